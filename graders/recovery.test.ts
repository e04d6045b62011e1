/**
 * The recovery probe on real containers: a service under supervisord comes back after the host
 * kills it (pass); the same service started once by hand does not (fail); a seat whose PIDs the
 * host cannot signal is an error; nothing to kill is a fail.
 */
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeploylabError } from '../runner/core/errors.js';
import { RecoveryParamsSchema } from '../runner/tasks/probe-params.js';
import { hasEngine } from '../test/helpers/docker-env.js';
import { requireImage } from '../test/helpers/images.js';
import { Deadline, runProbe, type SeatHandle, type SeatProcess } from './probe.js';
import { hostSignal, recoveryProbe, type SeatControl } from './recovery.js';

const docker = new Docker();
const TEST = 'recovery-probe';
const LABELS = { 'deploylab.component': 'test-recovery', 'deploylab.test': TEST };
const NET = 'deploylab-test-recovery';

async function removeOurs(): Promise<void> {
  const left = await docker.listContainers({ all: true, filters: { label: [`deploylab.test=${TEST}`] } });
  await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true })));
  const nets = await docker.listNetworks({ filters: { label: [`deploylab.test=${TEST}`] } });
  await Promise.all(nets.map((n) => docker.getNetwork(n.Id).remove().catch(() => undefined)));
}

/** A one-container seat: its IP on our network, processes from `docker top` (host PIDs). */
export function dockerSeat(c: Docker.Container, role = 'workspace', extra: Partial<SeatProcess> = {}): SeatHandle & SeatControl {
  return {
    id: TEST,
    labels: LABELS,
    async endpoint(port) {
      const info = await c.inspect();
      const ip = info.NetworkSettings.Networks[NET]?.IPAddress;
      if (!info.State.Running || !ip) throw new DeploylabError({ code: 'SANDBOX_NO_ENDPOINT', fault: 'candidate', message: { zh: '容器未运行', en: 'container not running' } });
      return { host: ip, port };
    },
    async readFile() {
      return null;
    },
    async listProcesses() {
      const top = (await c.top({ ps_args: '-o pid,ppid,user,args' })) as { Titles: string[]; Processes: string[][] };
      return top.Processes.map((r) => ({ hostPid: Number(r[0]), ppid: Number(r[1]), user: r[2] ?? '', command: r.slice(3).join(' '), role, ...extra }));
    },
    async checkPath() {
      await docker.ping();
      await c.inspect();
    },
  };
}

const SERVER = 'python3 -m http.server 8000 --bind 0.0.0.0';
const params = (within: number) =>
  RecoveryParamsSchema.parse({
    kind: 'recovery',
    disrupt: { action: 'kill-process', match: { commandMatches: '^python3 -m http\\.server 8000' } },
    then: { target: { port: 8000 }, path: '/', withinSeconds: within, pollMs: 250 },
  });

async function waitUp(seat: SeatHandle): Promise<void> {
  const ep = await seat.endpoint(8000);
  const until = Date.now() + 30_000;
  for (;;) {
    try {
      const r = await fetch(`http://${ep.host}:8000/`);
      if (r.ok) return;
    } catch {
      // not yet
    }
    if (Date.now() > until) throw new Error('test server did not start');
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe.skipIf(!hasEngine)('recovery probe on real containers', () => {
  let supervised: Docker.Container;
  let bare: Docker.Container;

  beforeAll(async () => {
    const image = await requireImage('workspace-cpu');
    await removeOurs();
    await docker.createNetwork({ Name: NET, Labels: LABELS, Internal: true });
    const make = async (cmd: string): Promise<Docker.Container> => {
      const c = await docker.createContainer({
        Image: image,
        User: '1000:1000',
        Cmd: ['bash', '-c', cmd],
        Labels: LABELS,
        HostConfig: { NetworkMode: NET, NanoCpus: 500_000_000, Memory: 256 * 1024 * 1024, PidsLimit: 128, Init: true },
      });
      await c.start();
      return c;
    };
    const conf = `[supervisord]\\nnodaemon=true\\nlogfile=/tmp/sd.log\\npidfile=/tmp/sd.pid\\n[program:web]\\ncommand=${SERVER}\\nautorestart=true\\nstartsecs=1\\n`;
    supervised = await make(`printf '${conf}' > /tmp/sd.conf && exec supervisord -c /tmp/sd.conf`);
    // Started once, in the background, by hand: nothing brings it back.
    bare = await make(`${SERVER} & exec sleep infinity`);
    await Promise.all([waitUp(dockerSeat(supervised)), waitUp(dockerSeat(bare))]);
  }, 90_000);

  afterAll(async () => {
    await removeOurs();
  });

  it('passes when a supervisor restarts the killed server within the allowance', async () => {
    const seat = dockerSeat(supervised);
    const before = (await seat.listProcesses()).find((p) => p.command.startsWith('python3 -m http.server'))!;
    const o = await runProbe(recoveryProbe, seat, params(10), Deadline.after(30_000));
    expect(o.status, JSON.stringify(o.summary)).toBe('pass');
    const after = (await seat.listProcesses()).find((p) => p.command.startsWith('python3 -m http.server'))!;
    expect(after.hostPid).not.toBe(before.hostPid); // a new process answers
    const t = o.evidence.find((e) => e.kind === 'note' && e.text.en === 'time to recover');
    expect(t?.kind === 'note' && (t.data?.['seconds'] as number)).toBeLessThan(10);
  }, 40_000);

  it('fails when nothing restarts it, after waiting the allowance', async () => {
    const seat = dockerSeat(bare);
    const t0 = Date.now();
    const o = await runProbe(recoveryProbe, seat, params(3), Deadline.after(30_000));
    expect(o.status).toBe('fail');
    expect(o.summary.en).toMatch(/did not answer again within 3 s/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(3_000);
    // Now it is down before any disruption: that is a fail too, not a recovery.
    const again = await runProbe(recoveryProbe, seat, params(3), Deadline.after(30_000));
    expect(again.status).toBe('fail');
    expect(again.summary.en).toMatch(/down before the disruption/);
  }, 40_000);

  it('is an error when the host cannot signal the seat (pod PID namespace), and the server keeps running', async () => {
    const seat = dockerSeat(supervised, 'workspace', { pidNamespace: 'pod' } as Partial<SeatProcess>);
    const before = (await seat.listProcesses()).find((p) => p.command.startsWith('python3 -m http.server'))!;
    const o = await runProbe(recoveryProbe, seat, params(5), Deadline.after(30_000));
    expect(o.status).toBe('error');
    expect(o.error?.code).toBe('PROBE_CANNOT_DISRUPT');
    const after = (await seat.listProcesses()).find((p) => p.command.startsWith('python3 -m http.server'))!;
    expect(after.hostPid).toBe(before.hostPid);
  }, 40_000);

  it('fails when no process matches (the service runs under another name)', async () => {
    const p = RecoveryParamsSchema.parse({ ...params(5), disrupt: { action: 'kill-process', match: { exe: 'llama-server' } } });
    const o = await runProbe(recoveryProbe, dockerSeat(supervised), p, Deadline.after(30_000));
    expect(o.status).toBe('fail');
    expect(o.summary.en).toMatch(/no service process/);
  }, 40_000);

  it('does not signal a PID that now runs something else', async () => {
    const seat = dockerSeat(supervised);
    const p = (await seat.listProcesses()).find((x) => x.command.startsWith('python3 -m http.server'))!;
    await hostSignal({ ...p, command: 'something-else --entirely' }, 'SIGKILL');
    const still = (await seat.listProcesses()).find((x) => x.command.startsWith('python3 -m http.server'))!;
    expect(still.hostPid).toBe(p.hostPid);
  }, 20_000);
});
