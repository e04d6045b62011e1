import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import { DeploylabError } from '../../runner/core/errors.js';
import { defaultDiskPolicy, type DiskPolicy } from '../../runner/sessions/disk-watch.js';
import { SessionService } from '../../runner/sessions/session-service.js';
import { LABEL } from '../../runner/sandbox/labels.js';
import { hasEngine } from '../helpers/docker-env.js';
import { ROSTER, images, miniTasksRoot, newService, until } from './helpers.js';

const MiB = 1024 * 1024;

/**
 * The runner's disk watch on a real engine: a seat writing past its quota has every process
 * stopped (the engine's freezer, seen from the host), its neighbour keeps working and the store
 * keeps recording; an examiner's resume lets it go on; while the host is below its reserve a seat
 * that keeps growing is stopped; seats are not opened into the reserve.
 */
describe.skipIf(!hasEngine)('seat disk quota', () => {
  const { svc: base, dataDir, id } = newService('disk');
  const tasksRoot = miniTasksRoot();
  writeFileSync(join(tasksRoot, 'papers', 'one-task.yaml'), 'id: one-task\nlevel: junior\ntitle:\n  zh: 单题\n  en: One task\ndurationMinutes: 30\npractice: true\ntasks:\n  - quantize\n');
  const docker = new Docker();
  const policy: DiskPolicy = { ...defaultDiskPolicy(), seatQuotaMiB: 64, warnPercent: 50, sampleSeconds: 1, reserveGiB: 0, graceSeconds: 5 };
  const progress: string[] = [];
  const svc = new SessionService({ db: base.db, driver: base.driver, dataDir, disk: policy, progress: (l) => progress.push(l.en) });
  const ref = (seat: string): { session: string; seat: string } => svc.sandboxes(id, seat)[0]!.ref;
  const containersOf = async (seat: string): Promise<Docker.ContainerInspectInfo[]> => {
    const list = await docker.listContainers({ all: true, filters: { label: [`${LABEL.session}=${id}`, `${LABEL.seat}=${ref(seat).seat}`] } });
    return Promise.all(list.map((c) => docker.getContainer(c.Id).inspect()));
  };
  /** The writer's file, sized from the engine's archive API (the seat cannot answer for it). */
  const fillBytes = async (seat: string): Promise<number> => {
    const entries = await svc.driver.readTree(ref(seat), '/workspace/fill', { maxBytes: 1, prefix: true }).catch(() => []);
    return entries.find((e) => e.type === 'file')?.size ?? 0;
  };
  afterAll(async () => {
    await svc.reset(id, { force: true }).catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(tasksRoot, { recursive: true, force: true });
  });

  it('a seat past its quota is stopped whole while its neighbour works on; resume lets it go on', async () => {
    svc.open({ id, paperId: 'one-task', tasksRoot, room: 'D1', roster: ROSTER, images: await images(), baseUrl: 'http://127.0.0.1:8700/' });
    expect((await svc.provision(id)).failed).toEqual([]);
    await svc.start(id);
    const supervising = svc.supervise(id, { grade: false, pollMs: 200 });
    // The candidate writes 1 MiB every 20 ms, up to 400 MiB (bounded), in the background.
    const w = await svc.driver.exec(ref('s01'), {
      cmd: ['sh', '-c', 'nohup sh -c \'i=0; while [ $i -lt 400 ]; do head -c 1048576 /dev/zero >> /workspace/fill; i=$((i+1)); sleep 0.02; done\' >/dev/null 2>&1 &'],
    });
    expect(w.exitCode).toBe(0);
    await until('the disk watch stops s01', () => svc.diskReadings(id).get('s01')?.halted === 1, 60_000, 200);
    const reading = svc.diskReadings(id).get('s01')!;
    expect(reading.halted_reason).toBe('quota');
    expect(reading.bytes).toBeGreaterThanOrEqual(64 * MiB);
    expect(svc.seat(id, 's01').state).toBe('paused');
    // From the host: every container of the seat is in the engine's freezer, and the file stops growing.
    const held = await containersOf('s01');
    expect(held.length).toBeGreaterThan(0);
    expect(held.every((c) => c.State.Paused)).toBe(true);
    const size1 = await fillBytes('s01');
    await new Promise((r) => setTimeout(r, 1500));
    expect(await fillBytes('s01')).toBe(size1);
    expect(size1).toBeLessThan(400 * MiB);
    // The neighbour works and is not touched; the store keeps recording.
    expect((await svc.driver.exec(ref('s02'), { cmd: ['sh', '-c', 'echo alive > /workspace/n && cat /workspace/n'] })).stdout).toBe('alive\n');
    expect(svc.seat(id, 's02').state).toBe('running');
    expect((await containersOf('s02')).every((c) => !c.State.Paused)).toBe(true);
    expect(svc.diskReadings(id).get('s02')).toMatchObject({ level: 'ok', halted: 0 });
    const halts = svc.db.prepare("SELECT data FROM transitions WHERE session_id = ? AND seat_id = 's01' AND event = 'disk-halt'").all(id) as { data: string }[];
    expect(halts).toHaveLength(1);
    expect(JSON.parse(halts[0]!.data)).toMatchObject({ reason: 'quota', quotaBytes: 64 * MiB });
    await svc.extend(id, 60_000, 's02');
    expect(svc.seat(id, 's02').allowed_ms).toBe(30 * 60_000 + 60_000);
    expect(progress.some((l) => l.includes('seat s01 reached its disk quota'))).toBe(true);

    // The examiner resumes: processes and access back, a grace to clean up in.
    await svc.resume(id, 's01');
    expect(svc.seat(id, 's01').state).toBe('running');
    expect((await containersOf('s01')).every((c) => !c.State.Paused)).toBe(true);
    expect(svc.diskReadings(id).get('s01')).toMatchObject({ halted: 0 });
    const clean = await svc.driver.exec(ref('s01'), { cmd: ['sh', '-c', 'pkill -f "[l]t 400"; rm -f /workspace/fill; echo cleaned'], user: 'root' });
    expect(clean.stdout).toContain('cleaned');
    await until('a reading under the quota', () => svc.diskReadings(id).get('s01')?.level === 'ok', 30_000, 200);
    expect(svc.diskReadings(id).get('s01')!.halted).toBe(0);
    await svc.end(id);
    expect(await supervising).toBe('frozen');
  }, 300_000);

  it('below the host reserve a seat still growing is stopped, one that is not keeps running', async () => {
    let free = 100 * 1024 * MiB;
    const short = new SessionService({ db: base.db, driver: base.driver, dataDir, disk: { ...policy, seatQuotaMiB: 4096, reserveGiB: 1 }, hostFree: async () => free });
    await short.diskCheck(id);
    expect(short.diskReadings(id).get('s02')?.halted).toBe(0);
    expect((await svc.driver.exec(ref('s02'), { cmd: ['sh', '-c', 'head -c 8388608 /dev/zero > /workspace/more && sync'], user: 'root' })).exitCode).toBe(0);
    // The faked reading: the host has less free than its reserve (this test does not fill the real disk).
    free = 1024 * MiB - 1;
    const step = await short.diskCheck(id);
    expect(step.halted).toEqual([{ seat: 's02', reason: 'host-reserve', bytes: expect.any(Number), files: expect.any(Number) }]);
    expect((await containersOf('s02')).every((c) => c.State.Paused)).toBe(true);
    expect((await containersOf('s01')).every((c) => !c.State.Paused)).toBe(true);
    expect((await short.releaseDisk(id, 's02'))?.halted).toBe(0);
    expect((await containersOf('s02')).every((c) => !c.State.Paused)).toBe(true);
  }, 120_000);

  // The layers' and volumes' directories are read on the host: the runner runs as root there.
  it.skipIf(process.getuid?.() !== 0)('a seat making empty files is stopped at its quota of files, counted on the host', async () => {
    const files = new SessionService({ db: base.db, driver: base.driver, dataDir, disk: { ...policy, seatQuotaMiB: 4096, seatQuotaFiles: 3000, graceSeconds: 0 } });
    await files.diskCheck(id);
    const before = files.diskReadings(id).get('s01')!;
    expect(before.files).not.toBeNull();
    expect(before.files!).toBeLessThan(3000);
    expect(before).toMatchObject({ halted: 0, quota_files: 3000 });
    // 3000 empty files: next to nothing in bytes.
    const made = await svc.driver.exec(ref('s01'), { cmd: ['sh', '-c', 'mkdir -p /workspace/many && cd /workspace/many && seq 1 3000 | xargs touch && ls | wc -l'], user: 'root' });
    expect(made.stdout.trim()).toBe('3000');
    const step = await files.diskCheck(id);
    expect(step.halted).toEqual([{ seat: 's01', reason: 'quota', bytes: expect.any(Number), files: expect.any(Number) }]);
    const after = files.diskReadings(id).get('s01')!;
    expect(after.files!).toBeGreaterThanOrEqual(3000);
    expect(after.bytes - before.bytes).toBeLessThan(4 * MiB);
    expect((await containersOf('s01')).every((c) => c.State.Paused)).toBe(true);
    expect((await containersOf('s02')).every((c) => !c.State.Paused)).toBe(true);
    const halts = svc.db.prepare("SELECT data FROM transitions WHERE session_id = ? AND seat_id = 's01' AND event = 'disk-halt' ORDER BY seq DESC LIMIT 1").get(id) as { data: string };
    expect(JSON.parse(halts.data)).toMatchObject({ reason: 'quota', quotaFiles: 3000 });
    expect((await files.releaseDisk(id, 's01'))?.halted).toBe(0);
  }, 120_000);

  it('seats are not opened into the reserve: refused before anything is made', async () => {
    const big = new SessionService({ db: base.db, driver: base.driver, dataDir, disk: { ...policy, reserveGiB: 1_000_000 } });
    const other = `${id}-r`;
    big.open({ id: other, paperId: 'one-task', tasksRoot, room: 'D2', roster: ROSTER.slice(0, 1), images: await images(), baseUrl: 'http://127.0.0.1:8700/' });
    const e = await big.provision(other).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(DeploylabError);
    expect((e as DeploylabError).code).toBe('HOST_DISK_RESERVE');
    expect(big.seat(other, 's01').state).toBe('pending');
    expect(big.session(other).state).toBe('planned');
    expect(await docker.listContainers({ all: true, filters: { label: [`${LABEL.session}=${other}`] } })).toEqual([]);
    await big.reset(other, { force: true });
  }, 60_000);
});
