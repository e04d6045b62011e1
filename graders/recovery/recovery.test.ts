/**
 * The recovery probe on real containers: a service under supervisord comes back after the host
 * kills it (pass); the same service started once by hand does not (fail); a seat whose PIDs the
 * host cannot signal is an error; nothing to kill is a fail. With identity and supervisor (a real
 * seat with llama-server): a standby taking the port, a shell loop restarting the server and a
 * stand-in under supervisord all fail.
 */
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeploylabError } from '../../runner/core/errors.js';
import { RecoveryParamsSchema } from './params.js';
import { hasEngine } from '../../test/helpers/docker-env.js';
import { requireImage } from '../../test/helpers/images.js';
import type { SeatControl } from '../capabilities.js';
import { Deadline, runProbe, type SeatHandle, type SeatProcess } from '../probe.js';
import { hostSignal, recoveryProbe, startedByOk } from './recovery.js';
import { seatHandleFor } from '../../runner/grading/seat-handle.js';
import { newVerifySession } from '../../runner/grading/verify.js';
import { DockerDriver } from '../../runner/sandbox/docker-driver.js';
import { parseSeatPlan } from '../../runner/sandbox/driver.js';

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

describe('startedByOk', () => {
  const row = (hostPid: number, ppid: number, user: string, command: string): SeatProcess => ({ hostPid, ppid, user, command, role: 'workspace' });
  const all = [
    row(10, 1, 'candidate', '/usr/bin/python3 /usr/bin/supervisord -c /w/s.conf'),
    row(11, 10, 'candidate', 'llama-server -m /m.gguf --port 8080'),
    row(20, 1, 'candidate', 'bash -c while true; do run-llm.sh; done'),
    row(21, 20, 'candidate', 'llama-server -m /m.gguf --port 8081'),
    row(30, 1, 'root', '/usr/bin/python3 /usr/bin/supervisord -c /etc/s.conf'),
    row(31, 30, 'candidate', 'llama-server -m /m.gguf --port 8082'),
  ];
  const by = { match: { commandMatches: '(^|/)supervisord( |$)' }, user: 'candidate' };
  it('follows the PPid chain to the supervisor, of the given user', () => {
    expect(startedByOk(all, [11], by).ok).toBe(true);
    expect(startedByOk(all, [11], by).chains[0]!.supervisor).toBe(10);
    // A shell loop is not the supervisor; root's supervisord is not the candidate's.
    expect(startedByOk(all, [21], by).ok).toBe(false);
    expect(startedByOk(all, [31], by).ok).toBe(false);
    expect(startedByOk(all, [31], { match: by.match }).ok).toBe(true);
    expect(startedByOk(all, [11, 21], by).ok).toBe(false);
    expect(startedByOk(all, [], by).ok).toBe(false);
  });
});

/**
 * On a real seat (docker driver, the real seat adapter, so the image's llama-server can be compared
 * by content): the proven server kept by supervisord recovers; a standby that takes the port when
 * the real server dies, a shell loop that restarts it, and a stand-in under supervisord do not.
 */
describe.skipIf(!hasEngine)('recovery probe with identity and supervisor, on a real seat', () => {
  const driver = new DockerDriver();
  const ref = { session: newVerifySession(), seat: 'recovery' };
  let seat: SeatHandle;
  const MODEL = '/opt/models/tiny-llama-f16.gguf';
  const serve = (port: number): string => `llama-server -m ${MODEL} --host 0.0.0.0 --port ${port} --threads 1 --ctx-size 256 --metrics`;
  const withIdentity = (port: number, over: Record<string, unknown> = {}) => ({
    kind: 'recovery',
    // The server itself, not the shell loop whose command line also names the port.
    disrupt: { action: 'kill-process', match: { commandMatches: `^\\S*llama-server .*--port ${port}( |$)` } },
    then: {
      target: { port },
      path: '/health',
      withinSeconds: 8,
      pollMs: 250,
      identity: {
        match: { commandMatches: `^\\S*llama-server .*--port ${port}( |$)` },
        expect: { count: { min: 1, max: 1 }, user: 'candidate', listens: port, executable: '/usr/local/bin/llama-server', opens: [MODEL] },
      },
      startedBy: { match: { commandMatches: '(^|/)supervisord( |$)' }, user: 'candidate' },
      ...over,
    },
  });
  const pidsOn = async (re: RegExp): Promise<number[]> => (await seat.listProcesses()).filter((p) => re.test(p.command)).map((p) => p.hostPid);

  beforeAll(async () => {
    const ws = await requireImage('workspace-cpu');
    await driver.provision(parseSeatPlan({ ...ref, task: 'recovery-identity-test', workspace: { image: ws }, resources: { cpus: 1, memoryMiB: 1024 } }));
    seat = seatHandleFor({ driver, ref, task: 'recovery-identity-test' });
    const conf = [
      '[unix_http_server]', 'file=/tmp/sd.sock', '[supervisord]', 'logfile=/tmp/sd.log', 'pidfile=/tmp/sd.pid',
      '[rpcinterface:supervisor]', 'supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface',
      '[program:real]', `command=${serve(8080)}`, 'autorestart=true', 'startsecs=1',
      '[program:standin]', "command=bash -c 'exec -a llama-server python3 /tmp/standin.py --port 8084'", 'autorestart=true', 'startsecs=1',
    ].join('\n');
    // Both imitations answer 200 to any GET (/health included).
    const ok = 'import http.server as h, time\nclass H(h.BaseHTTPRequestHandler):\n    def do_GET(self):\n        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()\n';
    const standby = `${ok}while True:\n    try:\n        s = h.ThreadingHTTPServer(("0.0.0.0", 8082), H); break\n    except OSError: time.sleep(0.1)\ns.serve_forever()\n`;
    // A stand-in named llama-server whose command line carries the port, as the real one's does.
    const standin = `${ok}h.ThreadingHTTPServer(("0.0.0.0", 8084), H).serve_forever()\n`;
    const cand = await driver.exec(ref, {
      stdin: `${conf}\n`,
      cmd: [
        'bash',
        '-c',
        [
          `printf '%s' '${standin}' >/tmp/standin.py`,
          'cat >/tmp/sd.conf && supervisord -c /tmp/sd.conf',
          `(setsid nohup ${serve(8082)} >/tmp/8082.log 2>&1 </dev/null &)`,
          `printf '%s' '${standby}' >/tmp/standby.py && (setsid nohup python3 /tmp/standby.py >/dev/null 2>&1 </dev/null &)`,
          `(setsid nohup bash -c 'while true; do ${serve(8083)}; sleep 0.2; done' >/tmp/8083.log 2>&1 </dev/null &)`,
          'for p in 8080 8082 8083 8084; do for i in $(seq 80); do curl -fs localhost:$p/health >/dev/null && break; sleep 0.25; done; curl -fs localhost:$p/health >/dev/null || { echo "$p down"; exit 1; }; done',
        ].join(' && '),
      ],
    });
    expect(cand.exitCode, cand.stdout + cand.stderr).toBe(0);
  }, 180_000);
  afterAll(async () => {
    await driver.sweep({ session: ref.session });
  });

  it('passes the proven server restarted by the candidate\'s supervisord', async () => {
    const before = await pidsOn(/llama-server .*--port 8080/);
    const o = await runProbe(recoveryProbe, seat, withIdentity(8080), Deadline.after(60_000));
    expect(o.status, JSON.stringify(o.evidence)).toBe('pass');
    const after = await pidsOn(/llama-server .*--port 8080/);
    expect(after).toHaveLength(1);
    expect(after[0]).not.toBe(before[0]);
  }, 60_000);

  it('fails a standby that takes the port when the real server dies (it answers, but is not the server)', async () => {
    const o = await runProbe(recoveryProbe, seat, withIdentity(8082, { startedBy: undefined }), Deadline.after(60_000));
    expect(o.status).toBe('fail');
    expect(o.summary.en).toMatch(/not the recovered service: the identity check does not pass/);
  }, 60_000);

  it('fails a shell loop that restarts the real server (identity holds, the supervisor did not start it)', async () => {
    const o = await runProbe(recoveryProbe, seat, withIdentity(8083), Deadline.after(60_000));
    expect(o.status).toBe('fail');
    expect(o.summary.en).toMatch(/not started by the supervisor/);
    // Without startedBy the loop's restart is a recovery.
    const loose = await runProbe(recoveryProbe, seat, withIdentity(8083, { startedBy: undefined }), Deadline.after(60_000));
    expect(loose.status, JSON.stringify(loose.evidence)).toBe('pass');
  }, 90_000);

  it('fails a stand-in under supervisord before killing anything', async () => {
    const before = await pidsOn(/--port 8084/);
    const p = withIdentity(8084);
    const o = await runProbe(recoveryProbe, seat, p, Deadline.after(60_000));
    expect(o.status).toBe('fail');
    expect(o.summary.en).toMatch(/before the disruption the service is not the identity-proven process/);
    expect(before).toHaveLength(1);
    expect(await pidsOn(/--port 8084/)).toEqual(before);
  }, 60_000);
});
