/**
 * `recovery` probe: the service answers, the harness breaks it (kills a named process of the seat,
 * restarts a seat container, or crashes a container of the seat's own daemon), and the service
 * must answer again within T seconds, by itself (a supervisor, a restart policy).
 *
 * Kills are done host-side by host PID, never by running a binary inside the seat: the driver's
 * process list gives the PID and /proc confirms it is still that process just before the signal.
 * A seat whose PIDs the host cannot signal (Kubernetes pods, a remote engine) is an `error`: the
 * harness could not disrupt, so it cannot judge.
 *
 * Identity (`then.identity`, judged as a `process` check: executable, model mapped, port held):
 * the service must be the proven process before the disruption, that process must be among those
 * killed, and after it the service counts as back only once the proven process answers again,
 * on new PIDs, so a stand-in that takes the port when the real server dies is no recovery.
 * `then.startedBy`: the recovered processes descend from the supervisor (its match and user), so
 * a shell loop of the candidate's own restarting the server does not count as the supervisor.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ErrorCode } from '../../runner/core/error-codes.js';
import { readFile } from 'node:fs/promises';
import type Docker from 'dockerode';
import type { z } from 'zod';
import { DeploylabError, asDeploylabError } from '../../runner/core/errors.js';
import { capability, type SeatControl, type Signal } from '../capabilities.js';
import { httpRequest } from '../shared/http-request.js';
import { DIND_ROLE, innerDocker } from '../shared/inner-docker.js';
import { hostPidsOfInner } from '../shared/inner-pids.js';
import { matches } from '../shared/process-match.js';
import {
  defineProbe,
  errored,
  failed,
  judgeUnreachable,
  note,
  passed,
  runProbe,
  type Deadline,
  type Evidence,
  type ProbeOutcome,
  type SeatHandle,
  type SeatProcess,
} from '../probe.js';
import { RecoveryParamsSchema } from './params.js';

export type RecoveryParams = z.output<typeof RecoveryParamsSchema>;

function cannotDisrupt(zh: string, en: string, cause?: unknown): DeploylabError {
  return new DeploylabError({
    code: 'PROBE_CANNOT_DISRUPT',
    fault: 'infrastructure',
    message: { zh: `评分程序无法制造故障：${zh}`, en: `the harness cannot disrupt the seat: ${en}` },
    hint: { zh: '在容器引擎所在主机上以 root 运行评分程序', en: 'run the grader as root on the engine host' },
    ...(cause !== undefined ? { cause } : {}),
  });
}

/** Command line of a host PID as ps shows it (NUL-separated argv joined by spaces), or null when gone. */
async function hostCommand(pid: number): Promise<string | null> {
  try {
    const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return raw.replace(/\0+$/, '').split('\0').join(' ');
  } catch {
    return null;
  }
}

async function hostAlive(pid: number): Promise<boolean> {
  try {
    // A zombie still has a /proc entry: only a live state counts.
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z /s.test(stat);
  } catch {
    return false;
  }
}

/** Signal a seat process from the host, after checking the PID still runs the listed command (PIDs are reused). */
export async function hostSignal(p: SeatProcess & { pidNamespace?: 'host' | 'pod' }, signal: Signal): Promise<void> {
  if (p.pidNamespace === 'pod') throw cannotDisrupt('该考位的进程号不是主机进程号', "the seat's PIDs are not host PIDs");
  const cmd = await hostCommand(p.hostPid);
  if (cmd === null) {
    throw cannotDisrupt(`主机上看不到进程 ${p.hostPid}（容器引擎不在本机？）`, `process ${p.hostPid} is not visible on this host (engine not local?)`);
  }
  // ps clips long argument lists; the listed text must be a prefix of the live one.
  if (!cmd.startsWith(p.command.trim())) return; // it exited and the PID was reused: nothing of ours to kill
  try {
    process.kill(p.hostPid, signal);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return;
    throw cannotDisrupt(`向进程 ${p.hostPid} 发送 ${signal} 失败`, `sending ${signal} to process ${p.hostPid} failed`, e);
  }
}

/** Host PID of an inner container's main process (`pidInDind`: its PID as the seat's daemon reports it). */
export async function hostPidOfInner(dindHostPids: readonly number[], pidInDind: number): Promise<number | null> {
  return (await hostPidsOfInner(dindHostPids, [pidInDind])).get(pidInDind) ?? null;
}

type Identity = NonNullable<RecoveryParams['then']['identity']>;
type StartedBy = NonNullable<RecoveryParams['then']['startedBy']>;

/** The `process` check of the service's identity, and the PIDs it matched. */
async function proveIdentity(seat: SeatHandle, id: Identity, deadline: Deadline): Promise<{ outcome: ProbeOutcome; pids: number[] }> {
  // Another kind's check, taken from the list of kinds; loaded when it runs, as that list loads this kind too.
  const { KINDS } = await import('../kinds.js');
  const outcome = await runProbe(KINDS.process.probe, seat, { kind: 'process', container: id.container, match: id.match, expect: id.expect }, deadline);
  const pids = (await seat.listProcesses()).filter((x) => x.role === id.container && matches(x, id.match)).map((x) => x.hostPid);
  return { outcome, pids };
}

function identityNote(when: { zh: string; en: string }, o: ProbeOutcome, pids: number[]): Evidence {
  const checked = o.evidence.find((e) => e.kind === 'note' && e.text.en === 'expectations checked');
  return note(`${when.zh}的身份检查：${o.summary.zh}`, `identity ${when.en}: ${o.summary.en}`, {
    status: o.status,
    hostPids: pids,
    ...(checked?.kind === 'note' && checked.data ? { assertions: checked.data['assertions'] } : {}),
  });
}

function outcomeError(o: ProbeOutcome): DeploylabError {
  const e = o.error ?? { code: 'PROBE_IDENTITY_UNJUDGED', fault: 'infrastructure', message: o.summary };
  // An outcome's error code was a DeploylabError's code when the inner probe recorded it.
  return new DeploylabError({ code: e.code as ErrorCode, fault: e.fault as DeploylabError['fault'], message: e.message });
}

/**
 * Whether every process in `pids` descends (by the host's PPid chain in the seat's listing) from
 * a process matching the supervisor; the chain of each, for the evidence.
 */
export function startedByOk(all: readonly SeatProcess[], pids: readonly number[], by: StartedBy): { ok: boolean; chains: { hostPid: number; supervisor?: number; ancestors: string[] }[] } {
  const byPid = new Map(all.map((p) => [p.hostPid, p]));
  const isSupervisor = (p: SeatProcess): boolean => matches(p, by.match) && (by.user === undefined || p.user === by.user);
  const chains = pids.map((pid) => {
    const ancestors: string[] = [];
    let cur = byPid.get(pid)?.ppid;
    for (let hops = 0; hops < 64 && cur !== undefined && cur > 0; hops++) {
      const p = byPid.get(cur);
      if (!p) break;
      ancestors.push(`${p.hostPid} ${p.user} ${p.command.slice(0, 120)}`);
      if (isSupervisor(p)) return { hostPid: pid, supervisor: p.hostPid, ancestors };
      cur = p.ppid;
    }
    return { hostPid: pid, ancestors };
  });
  return { ok: chains.length > 0 && chains.every((c) => c.supervisor !== undefined), chains };
}

interface Disrupted {
  /** Host PIDs that must be gone before the service counts as answering "again". */
  killed: number[];
  evidence: Evidence;
}

async function disrupt(seat: SeatHandle & SeatControl, p: RecoveryParams, deadline: Deadline): Promise<Disrupted | { nothing: Evidence }> {
  const d = p.disrupt;
  if (d.action === 'kill-process') {
    const all = await seat.listProcesses();
    const found = all.filter((x) => x.role === d.container && matches(x, d.match));
    const shown = found.slice(0, 20).map((x) => ({ hostPid: x.hostPid, user: x.user, command: x.command.slice(0, 300) }));
    if (found.length === 0) return { nothing: note('没有匹配的进程可以终止', 'no matching process to kill', { match: d.match }) };
    const signal = seat.signalProcess?.bind(seat) ?? hostSignal;
    for (const x of found) await signal(x, d.signal);
    return { killed: found.map((x) => x.hostPid), evidence: note(`已发送 ${d.signal}`, `sent ${d.signal}`, { processes: shown }) };
  }
  if (d.action === 'restart-container') {
    await capability(seat, 'restart')(d.container);
    return { killed: [], evidence: note(`已重启容器 ${d.container}`, `restarted container ${d.container}`) };
  }
  // kill-inner-container
  const docker: Docker = await innerDocker(seat, deadline);
  const list = await docker.listContainers({ all: false });
  const re = new RegExp(d.match.name);
  const hit = list.filter((c) => c.Names.some((n) => re.test(n.replace(/^\//, ''))));
  if (hit.length === 0) return { nothing: note('考位内 Docker 中没有匹配的运行中容器', "no running container in the seat's daemon matches", { match: d.match }) };
  const dindPids = (await seat.listProcesses()).filter((x) => x.role === DIND_ROLE).map((x) => x.hostPid);
  const killed: number[] = [];
  for (const c of hit) {
    const info = await docker.getContainer(c.Id).inspect();
    const host = await hostPidOfInner(dindPids, info.State.Pid);
    if (host === null) throw cannotDisrupt(`找不到容器 ${c.Names[0]} 主进程的主机进程号`, `host PID of ${c.Names[0]}'s main process not found`);
    try {
      process.kill(host, d.signal);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw cannotDisrupt(`终止进程 ${host} 失败`, `killing ${host} failed`, e);
    }
    killed.push(host);
  }
  return { killed, evidence: note(`已终止容器主进程（${d.signal}）`, `killed the containers' main processes (${d.signal})`, { containers: hit.map((c) => c.Names[0]), hostPids: killed }) };
}

/**
 * After the service answers again: is it the proven service on new processes, started by the
 * supervisor? Without `identity` or `startedBy` an answer is enough.
 */
async function recoveredAs(
  seat: SeatHandle,
  p: RecoveryParams,
  killed: readonly number[],
  deadline: Deadline,
): Promise<{ ok: boolean; why: { zh: string; en: string }; evidence: Evidence[] } | { error: DeploylabError; evidence: Evidence[] }> {
  const t = p.then;
  const evidence: Evidence[] = [];
  let pids: number[] | undefined;
  if (t.identity) {
    const id = await proveIdentity(seat, t.identity, deadline);
    evidence.push(identityNote({ zh: '恢复后', en: 'after recovery' }, id.outcome, id.pids));
    if (id.outcome.status === 'error') return { error: outcomeError(id.outcome), evidence };
    if (id.outcome.status !== 'pass') return { ok: false, why: { zh: '身份检查未通过', en: 'the identity check does not pass' }, evidence };
    if (id.pids.some((pid) => killed.includes(pid))) return { ok: false, why: { zh: '仍是被终止的进程号', en: 'still a killed PID' }, evidence };
    pids = id.pids;
  }
  if (t.startedBy) {
    const all = await seat.listProcesses();
    if (pids === undefined) {
      const d = p.disrupt;
      pids = d.action === 'kill-process' ? all.filter((x) => x.role === d.container && matches(x, d.match)).map((x) => x.hostPid) : [];
    }
    const r = startedByOk(all, pids, t.startedBy);
    evidence.push(
      note(r.ok ? '恢复的进程由守护进程启动' : '恢复的进程不是由守护进程启动的', r.ok ? 'the recovered processes were started by the supervisor' : 'the recovered processes were not started by the supervisor', {
        supervisor: t.startedBy,
        chains: r.chains,
      }),
    );
    if (!r.ok) return { ok: false, why: { zh: '不是由守护进程启动的', en: 'not started by the supervisor' }, evidence };
  }
  return { ok: true, why: { zh: '', en: '' }, evidence };
}

export const recoveryProbe = defineProbe({
  kind: 'recovery',
  params: RecoveryParamsSchema,
  async run(handle, p, deadline) {
    const seat = handle as SeatHandle & SeatControl;
    const t = p.then;
    const ask = (): ReturnType<typeof httpRequest> =>
      httpRequest(seat, { target: t.target, method: 'GET', path: t.path, headers: {}, timeoutMs: Math.min(5_000, t.pollMs * 5) }, deadline);
    const evidence: Evidence[] = [];

    // 1. It must answer before: recovering from nothing is not recovery.
    const before = await ask();
    evidence.push(before.evidence);
    if (before.kind !== 'response' || before.exchange.status !== t.status) {
      if (before.kind === 'unreachable') {
        return judgeUnreachable(seat, { zh: '故障前服务就不可用', en: 'the service was down before the disruption' }, evidence);
      }
      return failed({ zh: '故障前服务就没有正常响应', en: 'the service did not answer properly before the disruption' }, evidence);
    }

    // 1b. ... and it must be the proven service: what is killed is that process.
    let proven: number[] = [];
    if (t.identity) {
      const id = await proveIdentity(seat, t.identity, deadline);
      evidence.push(identityNote({ zh: '故障前', en: 'before the disruption' }, id.outcome, id.pids));
      if (id.outcome.status === 'error') return errored(outcomeError(id.outcome), evidence);
      if (id.outcome.status !== 'pass') {
        return failed({ zh: '故障前应答的服务不是经身份核对的服务进程', en: 'before the disruption the service is not the identity-proven process' }, evidence);
      }
      proven = id.pids;
    }

    // 2. Break it.
    let done: Disrupted | { nothing: Evidence };
    try {
      done = await disrupt(seat, p, deadline);
    } catch (e) {
      const err = asDeploylabError(e);
      if (err.fault === 'candidate') throw err;
      return errored(err, evidence);
    }
    if ('nothing' in done) {
      return failed({ zh: '没有找到要终止的服务进程', en: 'no service process to kill was found' }, [...evidence, done.nothing]);
    }
    evidence.push(done.evidence);
    const spared = proven.filter((pid) => !done.killed.includes(pid));
    if (spared.length > 0) {
      return failed({ zh: '经身份核对的服务进程不在被终止的进程之中', en: 'the identity-proven service process is not among those killed' }, [
        ...evidence,
        note('未被终止的服务进程', 'service processes not killed', { hostPids: spared, killed: done.killed }),
      ]);
    }
    const t0 = Date.now();
    const limitAt = t0 + t.withinSeconds * 1000;

    // 3. Wait until the killed processes are really gone, so an answer afterwards comes from a new one.
    while (true) {
      const alive = (await Promise.all(done.killed.map(hostAlive))).some(Boolean);
      if (!alive) break;
      if (Date.now() > limitAt) {
        return failed({ zh: `进程在 ${t.withinSeconds} 秒内没有退出`, en: `the process did not exit within ${t.withinSeconds} s` }, evidence);
      }
      await sleep(100);
    }

    // 4. Poll until it answers again (as the proven service, started by the supervisor) or the
    //    allowance runs out.
    let attempts = 0;
    let last: Evidence | undefined;
    let notYet: { evidence: Evidence[]; why: { zh: string; en: string } } | undefined;
    while (Date.now() <= limitAt) {
      deadline.check();
      const a = await ask();
      attempts++;
      last = a.evidence;
      if (a.kind === 'response' && a.exchange.status === t.status) {
        // The time it answered; who answered is judged after.
        const s = ((Date.now() - t0) / 1000).toFixed(1);
        const after = await recoveredAs(seat, p, done.killed, deadline);
        if ('error' in after) return errored(after.error, [...evidence, a.evidence, ...after.evidence]);
        if (after.ok) {
          return passed({ zh: `服务在 ${s} 秒后恢复`, en: `the service answered again after ${s} s` }, [
            ...evidence,
            a.evidence,
            ...after.evidence,
            note('恢复时间', 'time to recover', { seconds: Number(s), attempts, allowedSeconds: t.withinSeconds }),
          ]);
        }
        notYet = { evidence: [a.evidence, ...after.evidence], why: after.why };
      }
      await sleep(Math.min(t.pollMs, Math.max(0, limitAt - Date.now())));
      if (Date.now() > limitAt) break;
    }
    if (notYet && last === notYet.evidence[0]) {
      // It answered, but not as the service that was killed, restarted by its supervisor.
      return failed({ zh: `${t.withinSeconds} 秒内应答的不是恢复的服务：${notYet.why.zh}`, en: `what answered within ${t.withinSeconds} s is not the recovered service: ${notYet.why.en}` }, [
        ...evidence,
        ...notYet.evidence,
        note('轮询次数', 'polls made', { attempts, allowedSeconds: t.withinSeconds }),
      ]);
    }
    if (last) evidence.push(last);
    if (last?.kind === 'http' && last.response === undefined) {
      // Nothing answered at all: the harness's own path must be fine for that to be a fail.
      return judgeUnreachable(seat, { zh: `服务在 ${t.withinSeconds} 秒内没有恢复`, en: `the service did not answer again within ${t.withinSeconds} s` }, [
        ...evidence,
        note('轮询次数', 'polls made', { attempts, allowedSeconds: t.withinSeconds }),
      ]);
    }
    return failed({ zh: `服务在 ${t.withinSeconds} 秒内没有恢复`, en: `the service did not answer again within ${t.withinSeconds} s` }, [
      ...evidence,
      note('轮询次数', 'polls made', { attempts, allowedSeconds: t.withinSeconds }),
    ]);
  },
});
