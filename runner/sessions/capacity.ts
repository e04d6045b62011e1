import { freemem, totalmem } from 'node:os';
import { DeploylabError, type Bilingual } from '../core/errors.js';
import type { LoadedTask } from '../tasks/loader.js';

/**
 * What a room asks of the host, worked out from the roster and the paper before anything is
 * hashed or provisioned. Addresses are a hard bound (provisioning would fail part-way through
 * the room); memory ceilings are limits, not use, so exceeding the host only warns.
 */
export interface RoomDemand {
  seats: number;
  sandboxes: number;
  /** Sum of every container's memory limit in the room (the seat daemon's counts twice its seat's). */
  memoryCeilingMiB: number;
}

export function roomDemand(seats: number, tasks: readonly LoadedTask[]): RoomDemand {
  const perSeat = tasks.reduce((sum, t) => sum + t.task.needs.memoryMiB * (t.task.needs.profile === 'docker-in-seat' ? 3 : 1), 0);
  return { seats, sandboxes: seats * tasks.length, memoryCeilingMiB: seats * perSeat };
}

/** Refuses a room the backend cannot hold; returns the warnings for what it can hold but not promise. */
export function checkCapacity(
  demand: RoomDemand,
  limits: { sandboxesPerSession: number | null; hostMemoryMiB?: number },
): Bilingual[] {
  const { sandboxesPerSession: max } = limits;
  if (max !== null && demand.sandboxes > max) {
    const tasks = demand.seats > 0 ? demand.sandboxes / demand.seats : 0;
    const fits = tasks > 0 ? Math.floor(max / tasks) : 0;
    throw new DeploylabError({
      code: 'SESSION_CAPACITY',
      fault: 'config',
      message: {
        zh: `名单有 ${demand.seats} 名考生、试卷 ${tasks} 道题，共需 ${demand.sandboxes} 个考位沙箱，一个场次的网络最多容纳 ${max} 个`,
        en: `${demand.seats} candidates × ${tasks} tasks need ${demand.sandboxes} seat sandboxes; one session's network holds at most ${max}`,
      },
      hint: {
        zh: `每个场次最多 ${fits} 名考生：把名单拆成几个场次（每个考场一个场次）`,
        en: `at most ${fits} candidates per session: split the roster into several sessions (one per room)`,
      },
      details: { ...demand, sandboxesPerSession: max, candidatesPerSession: fits },
    });
  }
  const warnings: Bilingual[] = [];
  const host = limits.hostMemoryMiB ?? Math.floor(totalmem() / 2 ** 20);
  if (demand.memoryCeilingMiB > host) {
    const gib = (m: number): string => (m / 1024).toFixed(1);
    warnings.push({
      zh: `全部考位的内存上限合计 ${gib(demand.memoryCeilingMiB)} GiB，超过本机内存 ${gib(host)} GiB（当前空闲 ${gib(freemem() / 2 ** 20)} GiB）：若多数考生同时用满上限，主机会内存不足`,
      en: `the seats' memory limits add up to ${gib(demand.memoryCeilingMiB)} GiB, more than this host's ${gib(host)} GiB (${gib(freemem() / 2 ** 20)} GiB free now): if most candidates fill their limits at once the host runs out`,
    });
  }
  return warnings;
}
