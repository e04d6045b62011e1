import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeploylabError } from '../../runner/core/errors.js';
import { parseSeatPlan, type SandboxDriver, type SeatPlanInput, type SeatRef } from '../../runner/sandbox/driver.js';
import { readTar } from '../../runner/sandbox/tar.js';

export interface ContractOptions {
  /** Label for the describe block. */
  name: string;
  makeDriver: () => SandboxDriver | Promise<SandboxDriver>;
  /** A driver aimed at an engine that is not there: every call must fail with a typed error. */
  makeUnreachableDriver: () => SandboxDriver;
  seatImage: () => Promise<string>;
  /** How many engine objects still carry this session's labels (independent of the driver). */
  leftovers: (session: string) => Promise<number>;
  /** Whether the test process can reach seat endpoints (same host / same cluster network). */
  endpointsReachable?: boolean;
  /**
   * Whether the driver samples seats' disk and halts them (the runner's disk watch). false: the
   * engine bounds disk itself (Kubernetes' ephemeral-storage) and the calls say SANDBOX_UNSUPPORTED.
   */
  diskWatch?: boolean;
  /**
   * Whether the driver runs the seat's processes (default true: every real engine). false, for the
   * in-memory driver: the engine cases (exec, limits, isolation, endpoints, processes) are skipped,
   * the lifecycle cases run with their process steps gated, and the process operations must be
   * refused with SANDBOX_UNSUPPORTED rather than pretend.
   */
  runsProcesses?: boolean;
}

async function expectCode(p: Promise<unknown>, code: string, fault?: string): Promise<DeploylabError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e, `expected a DeploylabError ${code}`).toBeInstanceOf(DeploylabError);
  const de = e as DeploylabError;
  expect(de.code).toBe(code);
  if (fault) expect(de.fault).toBe(fault);
  return de;
}

async function httpGet(host: string, port: number, timeoutMs = 3000): Promise<string> {
  const res = await fetch(`http://${host}:${port}/`, { signal: AbortSignal.timeout(timeoutMs) });
  return res.text();
}

/**
 * The contract every sandbox driver must meet. On a real engine every case runs. With
 * `runsProcesses: false` the lifecycle half runs (provision and labels, status/list, freeze/thaw,
 * files, disk accounting, halt/release, evidence, typed errors, destroy and sweep) and the engine
 * half is skipped, visibly.
 */
export function runDriverContract(opts: ContractOptions): void {
  const procs = opts.runsProcesses !== false;
  /** A case that needs the seat's processes to run. */
  const engineIt = it.skipIf(!procs);
  describe(`sandbox driver contract: ${opts.name}`, () => {
    const session = `ct-${randomBytes(3).toString('hex')}`;
    const a: SeatRef = { session, seat: 'a' };
    const b: SeatRef = { session, seat: 'b' };
    let driver: SandboxDriver;
    let image: string;
    let tmp: string;
    let hostListener: Server | undefined;

    const plan = (seat: string, extra: Partial<SeatPlanInput> = {}): SeatPlanInput => ({
      session,
      seat,
      task: 'contract',
      workspace: { image, ports: [{ name: 'http', port: 8000 }] },
      resources: { cpus: 0.5, memoryMiB: 256, pids: 64 },
      ...extra,
    });

    beforeAll(async () => {
      driver = await opts.makeDriver();
      image = await opts.seatImage();
      tmp = mkdtempSync(join(tmpdir(), 'dl-contract-'));
      await Promise.all([driver.provision(parseSeatPlan(plan('a'))), driver.provision(parseSeatPlan(plan('b')))]);
    });

    afterAll(async () => {
      hostListener?.close();
      await driver?.sweep({ session }).catch(() => undefined);
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    });

    it('provisions: both seats run, labelled with session/seat/task', async () => {
      const st = await driver.status(a);
      expect(st.state).toBe('running');
      expect(st.task).toBe('contract');
      expect(st.containers.map((c) => c.role)).toContain('workspace');
      const listed = await driver.list({ session });
      expect(listed.map((s) => s.ref.seat)).toEqual(['a', 'b']);
    });

    engineIt('execs as the candidate (uid 1000) by default and as root on request, with exit codes', async () => {
      const me = await driver.exec(a, { cmd: ['id', '-u'] });
      expect(me.stdout.trim()).toBe('1000');
      expect(me.exitCode).toBe(0);
      const root = await driver.exec(a, { cmd: ['id', '-u'], user: 'root' });
      expect(root.stdout.trim()).toBe('0');
      const fail = await driver.exec(a, { cmd: ['sh', '-c', 'echo oops >&2; exit 3'] });
      expect(fail.exitCode).toBe(3);
      expect(fail.stderr).toContain('oops');
      const pwd = await driver.exec(a, { cmd: ['sh', '-c', 'pwd; touch mine && echo wrote'] });
      expect(pwd.stdout).toBe('/workspace\nwrote\n');
    });

    engineIt('exec: stdin, streamed output, output cap, TTY, deadline', async () => {
      const chunks: string[] = [];
      const cat = await driver.exec(a, { cmd: ['cat'], stdin: 'hello seat', onOutput: (_s, c) => chunks.push(c.toString()) });
      expect(cat.stdout).toBe('hello seat');
      expect(chunks.join('')).toBe('hello seat');
      const big = await driver.exec(a, { cmd: ['sh', '-c', 'head -c 100000 /dev/zero | tr "\\0" x'], outputCapBytes: 1000 });
      expect(big.stdout.length).toBe(1000);
      expect(big.truncated).toBe(true);
      const tty = await driver.exec(a, { cmd: ['sh', '-c', 'test -t 1 && echo tty'], tty: true });
      expect(tty.stdout.trim()).toBe('tty');
      const t0 = Date.now();
      const slow = await driver.exec(a, { cmd: ['sleep', '30'], deadlineMs: 700 });
      expect(slow.timedOut).toBe(true);
      expect(slow.exitCode).toBeNull();
      expect(Date.now() - t0).toBeLessThan(5000);
      const left = await driver.exec(a, { cmd: ['sh', '-c', 'ps -eo args | grep -c "^sleep 30" || true'], user: 'root' });
      expect(left.stdout.trim()).toBe('0');
    });

    it('a second provision of a seat that exists is refused, typed, and leaves that seat as it was', async () => {
      const before = await driver.status(a);
      await expectCode(driver.provision(parseSeatPlan(plan('a'))), 'SANDBOX_SEAT_EXISTS', 'bug');
      const after = await driver.status(a);
      expect(after.state).toBe('running');
      expect(after.containers.map((c) => c.id)).toEqual(before.containers.map((c) => c.id));
    });

    it('writes files and reads them back through the archive API', async () => {
      await driver.writeFiles(a, [
        { path: '/workspace/notes/a.txt', content: 'alpha\n' },
        { path: '/workspace/notes/b.bin', content: Buffer.from([0, 1, 2, 255]), mode: 0o600 },
      ]);
      expect((await driver.readFile(a, '/workspace/notes/a.txt')).toString()).toBe('alpha\n');
      expect([...(await driver.readFile(a, '/workspace/notes/b.bin'))]).toEqual([0, 1, 2, 255]);
      const tree = await driver.readTree(a, '/workspace/notes');
      const files = tree.filter((e) => e.type === 'file').map((e) => [e.path, e.uid, e.mode & 0o777]);
      expect(files.sort()).toEqual([['a.txt', 1000, 0o644], ['b.bin', 1000, 0o600]]);
      // The candidate owns what was written for them.
      if (procs) {
        const mine = await driver.exec(a, { cmd: ['sh', '-c', 'echo more >> /workspace/notes/a.txt && cat /workspace/notes/a.txt'] });
        expect(mine.stdout).toBe('alpha\nmore\n');
      }
      await expectCode(driver.readFile(a, '/workspace/nope.txt'), 'SANDBOX_FILE_NOT_FOUND', 'candidate');
      if (procs) await driver.exec(a, { cmd: ['sh', '-c', 'head -c 300000 /dev/zero > /workspace/big.bin'] });
      else await driver.writeFiles(a, [{ path: '/workspace/big.bin', content: Buffer.alloc(300_000) }]);
      await expectCode(driver.readFile(a, '/workspace/big.bin', { maxBytes: 100_000 }), 'SANDBOX_FILE_TOO_LARGE');
    });

    engineIt('an endpoint of a seat service is reachable by graders; processes are listed with host PIDs', async () => {
      await driver.exec(a, { cmd: ['sh', '-c', 'echo seat-a > index.html; nohup python3 -m http.server 8000 >/dev/null 2>&1 &'] });
      const ep = await driver.endpoint(a, 8000);
      let body = '';
      for (let i = 0; i < 50 && !body; i++) {
        body = await httpGet(ep.host, ep.port, 1000).catch(() => '');
        if (!body) await new Promise((r) => setTimeout(r, 200));
      }
      if (opts.endpointsReachable !== false) expect(body).toBe('seat-a\n');
      const procs = await driver.processes(a);
      const server = procs.find((p) => p.command.includes('http.server'));
      expect(server, JSON.stringify(procs)).toBeDefined();
      expect(server!.role).toBe('workspace');
      // A host PID: on a local engine /proc on this host shows the same command line.
      if (existsSync(`/proc/${server!.hostPid}/cmdline`)) {
        expect(readFileSync(`/proc/${server!.hostPid}/cmdline`, 'utf8')).toContain('http.server');
      }
    });

    engineIt('limits: a memory hog is killed; a fork bomb stops at the pids limit while another seat stays responsive', async () => {
      const hog = await driver.exec(a, { cmd: ['python3', '-c', 'b = bytearray(600 << 20); print("survived")'], deadlineMs: 30_000 });
      expect(hog.stdout).not.toContain('survived');
      expect(hog.exitCode).not.toBe(0);
      const bomb = driver.exec(a, {
        cmd: ['python3', '-c', [
          'import os, time',
          'n = 0',
          'try:',
          '    while n < 1000:',
          '        if os.fork() == 0:',
          '            time.sleep(4); os._exit(0)',
          '        n += 1',
          'except OSError as e:',
          '    print("stopped", n, e.errno)',
        ].join('\n')],
        deadlineMs: 30_000,
      });
      await new Promise((r) => setTimeout(r, 300));
      const t0 = Date.now();
      const other = await driver.exec(b, { cmd: ['echo', 'alive'], deadlineMs: 5000 });
      expect(other.stdout.trim()).toBe('alive');
      expect(Date.now() - t0).toBeLessThan(5000);
      const r = await bomb;
      const m = /stopped (\d+) (\d+)/.exec(r.stdout);
      expect(m, r.stdout + r.stderr).not.toBeNull();
      expect(Number(m![1])).toBeLessThan(64);
      expect(Number(m![2])).toBe(11); // EAGAIN
      await new Promise((res) => setTimeout(res, 4500));
    });

    engineIt('isolation: seat A cannot connect to seat B, nor out of its network; the host can reach both', async () => {
      await driver.exec(b, { cmd: ['sh', '-c', 'echo seat-b > index.html; nohup python3 -m http.server 8000 >/dev/null 2>&1 &'] });
      const epB = await driver.endpoint(b, 8000);
      let body = '';
      for (let i = 0; i < 50 && !body; i++) {
        body = await httpGet(epB.host, epB.port, 1000).catch(() => '');
        if (!body) await new Promise((r) => setTimeout(r, 200));
      }
      if (opts.endpointsReachable !== false) expect(body).toBe('seat-b\n');
      const probe = (host: string, port: number): string[] => ['python3', '-c',
        `import socket\ntry:\n    socket.create_connection((${JSON.stringify(host)}, ${port}), timeout=2); print("connected")\nexcept Exception as e:\n    print("blocked", type(e).__name__)`];
      const ab = await driver.exec(a, { cmd: probe(epB.host, epB.port), deadlineMs: 10_000 });
      expect(ab.stdout).toMatch(/^blocked/);
      // Positive control: the same probe reaches A's own service.
      const self = await driver.exec(a, { cmd: probe('127.0.0.1', 8000), deadlineMs: 10_000 });
      expect(self.stdout.trim()).toBe('connected');
      // No egress: a listener on every host address is not reachable through the seat's gateway.
      hostListener = createServer((s) => s.end('host\n'));
      await new Promise<void>((r) => hostListener!.listen(0, '0.0.0.0', r));
      const hostPort = (hostListener.address() as AddressInfo).port;
      const gw = await driver.exec(a, { cmd: ['sh', '-c', "awk '$2==\"00000000\" {print $3}' /proc/net/route"] });
      const hex = gw.stdout.trim();
      if (hex) {
        const gwIp = [6, 4, 2, 0].map((i) => parseInt(hex.slice(i, i + 2), 16)).join('.');
        const out = await driver.exec(a, { cmd: probe(gwIp, hostPort), deadlineMs: 10_000 });
        expect(out.stdout).toMatch(/^blocked/);
      }
    });

    it('freeze closes candidate access while services keep running; thaw reopens it', async () => {
      const term = procs ? await driver.openTerminal(a) : undefined;
      term?.stream.write('echo from-terminal\n');
      await driver.freeze(a);
      expect((await driver.status(a)).state).toBe('frozen');
      if (term) expect(await Promise.race([term.done.then(() => 'closed'), new Promise((r) => setTimeout(() => r('open'), 3000))])).toBe('closed');
      await expectCode(driver.exec(a, { cmd: ['true'] }), 'SANDBOX_SEAT_FROZEN', 'candidate');
      await expectCode(driver.openTerminal(a), 'SANDBOX_SEAT_FROZEN');
      if (procs) {
        const root = await driver.exec(a, { cmd: ['true'], user: 'root' });
        expect(root.exitCode).toBe(0);
        if (opts.endpointsReachable !== false) {
          const ep = await driver.endpoint(a, 8000);
          expect(await httpGet(ep.host, ep.port)).toBe('seat-a\n');
        }
        expect((await driver.processes(a)).some((p) => p.command.includes('http.server'))).toBe(true);
      }
      await driver.thaw(a);
      expect((await driver.status(a)).state).toBe('running');
      if (procs) expect((await driver.exec(a, { cmd: ['echo', 'back'] })).stdout).toBe('back\n');
      // Access is open again: what refuses the candidate now is only that nothing runs here.
      else await expectCode(driver.exec(a, { cmd: ['echo', 'back'] }), 'SANDBOX_UNSUPPORTED', 'config');
    });

    it('disk: the engine counts what a seat writes, to that seat only; halt stops every process of it, release lets them go on', async () => {
      if (opts.diskWatch === false) {
        await expectCode(driver.diskUsage({ session }), 'SANDBOX_UNSUPPORTED');
        await expectCode(driver.halt(a), 'SANDBOX_UNSUPPORTED');
        return;
      }
      const bytesOf = async (ref: SeatRef): Promise<number> => (await driver.diskUsage({ session })).find((u) => u.ref.seat === ref.seat)?.bytes ?? 0;
      const [a0, b0] = [await bytesOf(a), await bytesOf(b)];
      if (procs) expect((await driver.exec(a, { cmd: ['sh', '-c', 'head -c 20971520 /dev/zero > /workspace/blob && sync'] })).exitCode).toBe(0);
      // Outside the workspace: with no process to delete it, it must stay out of the evidence below.
      else await driver.writeFiles(a, [{ path: '/tmp/blob', content: Buffer.alloc(20 << 20) }]);
      const [a1, b1] = [await bytesOf(a), await bytesOf(b)];
      expect(a1 - a0).toBeGreaterThanOrEqual(20 << 20);
      expect(Math.abs(b1 - b0)).toBeLessThan(1 << 20);
      // A counter the seat runs; only the engine's archive API reads it back.
      if (procs) await driver.exec(a, { cmd: ['sh', '-c', 'nohup sh -c \'i=0; while [ $i -lt 600 ]; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done\' >/dev/null 2>&1 &'] });
      const count = async (): Promise<number> => Number((await driver.readFile(a, '/tmp/count')).toString().trim() || '0');
      if (procs) await new Promise((r) => setTimeout(r, 500));
      await driver.halt(a);
      const h1 = procs ? await count() : 0;
      if (procs) {
        await new Promise((r) => setTimeout(r, 1500));
        expect(await count()).toBe(h1);
      }
      await expectCode(driver.exec(a, { cmd: ['true'], user: 'root' }), 'SANDBOX_SEAT_HALTED');
      if (procs) expect((await driver.exec(b, { cmd: ['echo', 'alive'], deadlineMs: 5000 })).stdout).toBe('alive\n');
      // The other seat is not halted: nothing but the missing process refuses it.
      else await expectCode(driver.exec(b, { cmd: ['echo', 'alive'] }), 'SANDBOX_UNSUPPORTED');
      await driver.release(a);
      if (procs) {
        await new Promise((r) => setTimeout(r, 1500));
        expect(await count()).toBeGreaterThan(h1);
        // The counter ends by itself within a minute; the blob goes now.
        await driver.exec(a, { cmd: ['rm', '-f', '/workspace/blob'], user: 'root' });
      } else {
        await expectCode(driver.exec(a, { cmd: ['true'], user: 'root' }), 'SANDBOX_UNSUPPORTED');
      }
    });

    it('captures the workspace as a gzipped tar with its sha256', async () => {
      const file = join(tmp, 'a.tar.gz');
      const ev = await driver.captureEvidence(a, file);
      const bytes = readFileSync(file);
      expect(ev.bytes).toBe(bytes.length);
      expect(ev.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
      const entries = await readTar(Readable.from(gunzipSync(bytes)), 10 << 20);
      const names = entries.map((e) => e.path);
      expect(names).toContain('workspace/notes/a.txt');
      // Written by the seat's own web server case.
      if (procs) expect(names).toContain('workspace/index.html');
    });

    it('engine errors come back typed: unknown seat, missing image, unreachable engine', async () => {
      await expectCode(driver.status({ session, seat: 'nosuch' }), 'SANDBOX_SEAT_NOT_FOUND', 'infrastructure');
      await expectCode(
        driver.provision(parseSeatPlan({ ...plan('c'), workspace: { image: 'deploylab-dev/does-not-exist:none' } })),
        'SANDBOX_IMAGE_MISSING',
        'infrastructure',
      );
      expect(await opts.leftovers(`${session}`).then(async () => (await driver.list({ session })).map((s) => s.ref.seat))).toEqual(['a', 'b']);
      const dead = opts.makeUnreachableDriver();
      await expectCode(dead.provision(parseSeatPlan(plan('d'))), 'SANDBOX_ENGINE_ERROR', 'infrastructure');
      await expectCode(dead.list(), 'SANDBOX_ENGINE_ERROR', 'infrastructure');
    });

    // Registered only where it applies, so real engines' runs list exactly their own cases.
    if (!procs) {
      it('runs no processes: exec, terminals, process listing and endpoints are refused, typed, never faked', async () => {
        const calls = [
          () => driver.exec(a, { cmd: ['true'] }),
          () => driver.exec(a, { cmd: ['true'], user: 'root' }),
          () => driver.openTerminal(a),
          () => driver.openTerminal(a, { user: 'root' }),
          () => driver.processes(a),
          () => driver.endpoint(a, 8000),
        ];
        for (const call of calls) {
          const e = await expectCode(call(), 'SANDBOX_UNSUPPORTED', 'config');
          // Both languages say why (the Chinese text is not the English one copied).
          expect(e.zh).toMatch(/[\u4e00-\u9fff]/);
          expect(e.message).toMatch(/process/i);
        }
        // An unknown seat is still an unknown seat.
        await expectCode(driver.exec({ session, seat: 'nosuch' }, { cmd: ['true'] }), 'SANDBOX_SEAT_NOT_FOUND', 'infrastructure');
        await expectCode(driver.processes({ session, seat: 'nosuch' }), 'SANDBOX_SEAT_NOT_FOUND', 'infrastructure');
      });
    }

    it('destroy removes a seat; a sweep leaves nothing carrying the session labels, as leftovers and the engine agree', async () => {
      // Both seats' objects are listed; another session's never are.
      const before = await driver.leftovers({ session });
      expect(before.length).toBeGreaterThanOrEqual(2);
      expect(await driver.leftovers({ session: `${session}-other` })).toEqual([]);
      await driver.destroy(a);
      await expectCode(driver.status(a), 'SANDBOX_SEAT_NOT_FOUND');
      expect((await driver.status(b)).state).toBe('running');
      const swept = await driver.sweep({ session });
      expect(swept.some((s) => s.seat === 'b')).toBe(true);
      expect(await opts.leftovers(session)).toBe(0);
      expect(await driver.leftovers({ session })).toEqual([]);
      expect(await driver.sweep({ session })).toEqual([]);
    });
  });
}
