/**
 * The `load` probe against a reference configuration, on a real engine: the reference runs in the
 * real toolbox image on its own internal network, the candidate's service is a real server on
 * 127.0.0.1 (or, last, a real llama-server in a real seat against a reference llama-server on a
 * copy of the same model file).
 */
import { createServer, type Server } from 'node:http';
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DeploylabError } from '../../runner/core/errors.js';
import { LABEL } from '../../runner/sandbox/labels.js';
import { DockerDriver } from '../../runner/sandbox/docker-driver.js';
import { parseSeatPlan } from '../../runner/sandbox/driver.js';
import { seatHandleFor } from '../../runner/grading/seat-handle.js';
import { newVerifySession } from '../../runner/grading/verify.js';
import { REFERENCE_ROLE, startReference, sweepToolboxes, TOOLBOX_COMPONENT } from '../../runner/sandbox/docker-toolbox.js';
import { hasEngine } from '../../test/helpers/docker-env.js';
import { requireImage } from '../../test/helpers/images.js';
import { closeServer } from '../__helpers__/loopback-server.js';
import { tempSeat, type TempSeat } from '../__helpers__/temp-seat.js';
import type { ReferenceStarter } from '../capabilities.js';
import { loadProbe } from './load.js';
import { Deadline, runProbe, type ProbeOutcome } from '../probe.js';

const run = promisify(execFile);
const docker = new Docker();
const SESSION = newVerifySession();
const DELAY_MS = 100;

/** The reference: python3's threading HTTP server in the toolbox, answering after DELAY_MS (read from a copied seat file). */
const REFERENCE_PY = `
import http.server, time
delay = float(open('/work/delay-ms').read()) / 1000
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def do_GET(self):
        if self.path != '/health':
            time.sleep(delay)
        self.send_response(500 if self.path == '/broken' else 200)
        self.send_header('content-length', '3')
        self.end_headers()
        self.wfile.write(b'ok\\n')
    def log_message(self, *a):
        pass
print('listening', flush=True)
http.server.ThreadingHTTPServer(('0.0.0.0', 8080), H).serve_forever()
`;

async function leftovers(): Promise<string[]> {
  const label = [`${LABEL.component}=${TOOLBOX_COMPONENT}`, `${LABEL.session}=${SESSION}`];
  const cs = await docker.listContainers({ all: true, filters: { label } });
  const ns = await docker.listNetworks({ filters: { label } });
  return [...cs.map((c) => `container ${c.Names[0]}`), ...ns.map((n) => `network ${n.Name}`)];
}

async function inputRules(): Promise<string> {
  return (await run('iptables', ['-w', '5', '-S', 'INPUT'])).stdout;
}

const note = (o: ProbeOutcome, en: string): Record<string, unknown> => {
  const n = o.evidence.find((e) => e.kind === 'note' && e.text.en === en);
  return (n?.kind === 'note' ? n.data : undefined) ?? {};
};

describe.skipIf(!hasEngine)('load probe with a reference configuration (toolbox container)', () => {
  let toolbox: string;
  let server: Server;
  let port: number;
  let seat: TempSeat & ReferenceStarter;

  beforeAll(async () => {
    toolbox = await requireImage('toolbox');
    // The candidate's service: /fast answers after the same delay as the reference, /slow after 8×.
    server = createServer((req, res) => {
      req.resume();
      const ms = req.url === '/fast' ? DELAY_MS : req.url === '/slow' ? DELAY_MS * 8 : 0;
      setTimeout(() => res.writeHead(200).end('ok\n'), ms);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    await closeServer(server);
    await sweepToolboxes(docker, { session: SESSION });
  });
  beforeEach(async () => {
    const s = await tempSeat('seat-ref');
    await mkdir(join(s.root, 'srv'), { recursive: true });
    await writeFile(join(s.root, 'srv', 'server.py'), REFERENCE_PY);
    await writeFile(join(s.root, 'srv', 'delay-ms'), String(DELAY_MS));
    s.ports.set(8000, port);
    seat = Object.assign(s, {
      startReference: async (spec: Parameters<NonNullable<ReferenceStarter['startReference']>>[0]) => {
        const files = [];
        for (const c of spec.copy) {
          const f = await s.readFile(c.from);
          // As the seat handle says it: the candidate's file is missing.
          if (!f) throw new DeploylabError({ code: 'SEAT_FILE_MISSING', fault: 'candidate', message: { zh: `考位中没有该文件：${c.from}`, en: `no such file in the seat: ${c.from}` } });
          files.push({ path: c.to, content: f.data, mode: 0o644, uid: 0, gid: 0 });
        }
        return startReference({ docker, image: toolbox }, { [LABEL.session]: SESSION, [LABEL.seat]: 'seat-ref', [LABEL.task]: 'load-test' }, files, spec);
      },
    });
  });
  afterEach(async () => {
    await seat.cleanup();
  });

  const reference = {
    command: ['python3', '/work/server.py'],
    port: 8080,
    copy: [
      { from: '/srv/server.py', to: '/work/server.py' },
      { from: '/srv/delay-ms', to: '/work/delay-ms' },
    ],
    readyPath: '/health',
    readyTimeoutMs: 30_000,
  };
  const probe = (path: string, ref: Record<string, unknown> = reference, expect: Record<string, unknown> = { maxP95RatioToReference: 2, minThroughputRatioToReference: 0.5 }): Promise<ProbeOutcome> =>
    runProbe(loadProbe, seat, { kind: 'load', target: { port: 8000 }, method: 'GET', path, requests: 16, concurrency: 4, reference: { path: '/', ...ref }, expect, timeoutMs: 60_000 }, Deadline.after(65_000));

  it('pass: the candidate keeps pace with the reference measured just before it; both figures and the ratios are evidence', async () => {
    const o = await probe('/fast');
    expect(o.status, JSON.stringify(o)).toBe('pass');
    const cand = note(o, 'load result');
    const ref = note(o, 'reference load result');
    expect(ref['statuses']).toEqual({ '200': 16 });
    // Both sides really waited ~DELAY_MS per request.
    for (const r of [cand, ref]) {
      expect(r['p50Ms'] as number).toBeGreaterThanOrEqual(DELAY_MS - 1);
      for (const k of ['p90Ms', 'p95Ms', 'p99Ms']) expect(r[k]).toEqual(expect.any(Number));
    }
    expect(String(ref['where'])).toMatch(/^toolbox deploylab\/toolbox/);
    const ratios = cand['ratioToReference'] as { p95: number; throughput: number };
    expect(ratios.p95).toBeGreaterThan(0.5);
    expect(ratios.p95).toBeLessThan(2);
    expect(cand['method']).toMatch(/nearest-rank/);
    expect(await leftovers()).toEqual([]);
  }, 90_000);

  it('fail: a candidate eight times slower than the reference', async () => {
    const o = await probe('/slow');
    expect(o.status, JSON.stringify(o.summary)).toBe('fail');
    expect(o.summary.en).toContain('p95RatioToReference');
    expect(o.summary.en).toContain('throughputRatioToReference');
    const ratios = note(o, 'load result')['ratioToReference'] as { p95: number; throughput: number };
    expect(ratios.p95).toBeGreaterThan(4);
    expect(ratios.throughput).toBeLessThan(0.25);
    expect(await leftovers()).toEqual([]);
  }, 90_000);

  it('error, never pass or fail: a reference that exits, one that never gets ready, one that cannot start', async () => {
    // It may exit before the engine reports its address (start failed) or while the harness waits
    // for it (not ready): which one is the runtime's timing; either way the harness's error.
    const exits = await probe('/fast', { ...reference, command: ['python3', '-c', 'import sys; print("bad reference config", flush=True); sys.exit(3)'] });
    expect(exits.status).toBe('error');
    expect(exits.error?.fault).toBe('infrastructure');
    expect(['PROBE_REFERENCE_START_FAILED', 'PROBE_REFERENCE_NOT_READY']).toContain(exits.error?.code);
    if (exits.error?.code === 'PROBE_REFERENCE_NOT_READY') {
      expect(exits.error.message.en).toContain('exit code 3');
      expect(JSON.stringify(note(exits, 'reference service output (tail)'))).toContain('bad reference config');
    }

    const never = await probe('/fast', { ...reference, readyPath: '/health', readyTimeoutMs: 1_500, command: ['sleep', '60'] });
    expect(never.error?.code).toBe('PROBE_REFERENCE_NOT_READY');
    expect(never.error?.message.en).toContain('not ready within 1500 ms');

    const broken = await probe('/fast', { ...reference, path: '/broken' });
    expect(broken.error?.code).toBe('PROBE_REFERENCE_UNMEASURABLE');
    expect(note(broken, 'reference load result')['firstError']).toEqual({ status: 500, body: 'ok\n' });

    // The engine refuses the start, or (with an init process in front) the container exits at once:
    // which one depends on the runtime's timing; either way it is the harness's error.
    const cannot = await probe('/fast', { ...reference, command: ['/no/such/binary'] });
    expect(cannot.status).toBe('error');
    expect(cannot.error?.fault).toBe('infrastructure');
    expect(['PROBE_REFERENCE_START_FAILED', 'PROBE_REFERENCE_NOT_READY']).toContain(cannot.error?.code);

    // The candidate's missing file is the candidate's: fail, not error.
    const missing = await probe('/fast', { ...reference, copy: [{ from: '/srv/none.py', to: '/work/server.py' }] });
    expect(missing.status).toBe('fail');
    expect(await leftovers()).toEqual([]);
  }, 90_000);

  it('the reference is reachable from the harness only: an internal network, the host closed to it, all removed after', async () => {
    // A listener on the host's every address: the reference must not reach it through its bridge.
    const host = createServer((_, res) => res.end('host'));
    await new Promise<void>((r) => host.listen(0, '0.0.0.0', r));
    const hostPort = (host.address() as { port: number }).port;
    // Two ways into the host: the reference bridge's own gateway address and the engine's default bridge.
    const docker0 = (await docker.getNetwork('bridge').inspect()).IPAM?.Config?.[0]?.Gateway as string;
    const probeScript = `
import socket
ip = socket.gethostbyname(socket.gethostname())
def reach(addr):
    s = socket.socket(); s.settimeout(2)
    try:
        s.connect((addr, ${hostPort})); return 'yes'
    except Exception:
        return 'no'
import http.server
# Listening before the line the test waits for: it fetches as soon as it reads it.
srv = http.server.HTTPServer(('0.0.0.0', 8080), http.server.SimpleHTTPRequestHandler)
print('gateway-reached', reach(ip.rsplit('.', 1)[0] + '.1'), 'docker0-reached', reach('${docker0}'), flush=True)
srv.serve_forever()
`;
    try {
      const svc = await seat.startReference!({ command: ['python3', '-c', probeScript], port: 8080, copy: [], cpus: 1, memoryMiB: 256 });
      try {
        const labels = (await docker.listContainers({ filters: { label: [`${LABEL.role}=${REFERENCE_ROLE}`, `${LABEL.session}=${SESSION}`] } }))[0]?.Labels ?? {};
        expect(labels[LABEL.component]).toBe(TOOLBOX_COMPONENT);
        expect(labels[LABEL.seat]).toBe('seat-ref');
        const net = (await docker.listNetworks({ filters: { label: [`${LABEL.session}=${SESSION}`] } }))[0]!;
        expect(net.Internal).toBe(true);
        const bridge = net.Options?.['com.docker.network.bridge.name'] ?? '';
        expect(await inputRules()).toContain(`-i ${bridge} `);
        // Each refused attempt takes its 2 s connect timeout: wait for the line itself (bounded), not a fixed time.
        let out = '';
        const until = Date.now() + 40_000;
        while (!/docker0-reached \w+/.test(out) && Date.now() < until) {
          await new Promise((r) => setTimeout(r, 250));
          out = await svc.logs();
        }
        expect(out).toContain('gateway-reached no docker0-reached no');
        const res = await fetch(`http://${svc.endpoint.host}:${svc.endpoint.port}/`);
        expect(res.status).toBe(200);
        await svc.stop();
        expect(await leftovers()).toEqual([]);
        expect(await inputRules()).not.toContain(`-i ${bridge} `);
      } finally {
        await svc.stop();
      }
    } finally {
      await closeServer(host);
    }
  }, 90_000);
});

describe.skipIf(!hasEngine)('load probe on a real seat: candidate llama-server vs the reference llama-server on a copy of the same model', () => {
  const driver = new DockerDriver();
  const ref = { session: newVerifySession(), seat: 'load-ref' };
  let handle: ReturnType<typeof seatHandleFor>;

  beforeAll(async () => {
    const [ws, tb] = [await requireImage('workspace-cpu'), await requireImage('toolbox')];
    await driver.provision(parseSeatPlan({ ...ref, task: 'load-ref-test', workspace: { image: ws } }));
    handle = seatHandleFor({ driver, ref, task: 'load-ref-test', toolboxImage: tb });
    // The candidate's deployment: llama-server on the seat's model, as a candidate would start it.
    await driver.exec(ref, {
      cmd: ['bash', '-c', 'cp /opt/models/tiny-llama-f16.gguf /workspace/model.gguf && setsid nohup llama-server -m /workspace/model.gguf --host 0.0.0.0 --port 8080 -t 1 -c 512 >/tmp/server.log 2>&1 </dev/null &'],
    });
    const ep = await handle.endpoint(8080);
    for (let i = 0; i < 120; i++) {
      const ok = await fetch(`http://${ep.host}:${ep.port}/health`).then((r) => r.ok, () => false);
      if (ok) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error('the seat’s llama-server did not get ready');
  }, 120_000);
  afterAll(async () => {
    await driver.sweep({ session: ref.session });
    await sweepToolboxes(docker, { session: ref.session });
  });

  it('same model, same settings: within the ratio, and the reference is gone afterwards', async () => {
    // A random-weight model's free text may be invalid UTF-8 (llama-server answers 500); a grammar keeps it to letters.
    const body = { prompt: 'hello', n_predict: 8, grammar: 'root ::= [a-z ]+' };
    const o = await runProbe(
      loadProbe,
      handle,
      {
        kind: 'load',
        target: { port: 8080 },
        path: '/completion',
        requests: 12,
        concurrency: 2,
        warmupRequests: 8,
        body,
        reference: {
          command: ['llama-server', '-m', '/work/model.gguf', '--host', '0.0.0.0', '--port', '8080', '-t', '1', '-c', '512'],
          port: 8080,
          copy: [{ from: '/workspace/model.gguf', to: '/work/model.gguf' }],
          readyPath: '/health',
        },
        expect: { maxP95RatioToReference: 3 },
        timeoutMs: 90_000,
      },
      Deadline.after(95_000),
    );
    const [cand, refd] = [note(o, 'load result'), note(o, 'reference load result')];
    process.stderr.write(`llama-server load: candidate p50 ${cand['p50Ms']} p95 ${cand['p95Ms']} ms ${cand['throughputRps']} req/s; reference p50 ${refd['p50Ms']} p95 ${refd['p95Ms']} ms ${refd['throughputRps']} req/s; ratios ${JSON.stringify(cand['ratioToReference'])}\n`);
    expect(o.status, JSON.stringify(o)).toBe('pass');
    expect(refd['statuses']).toEqual({ '200': 12 });
    expect(note(o, 'load result')['statuses']).toEqual({ '200': 12 });
    const left = await docker.listContainers({ all: true, filters: { label: [`${LABEL.component}=${TOOLBOX_COMPONENT}`, `${LABEL.session}=${ref.session}`] } });
    expect(left).toEqual([]);
  }, 120_000);
});
