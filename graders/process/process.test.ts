/**
 * The process probe. Options, users and counts on process rows as the Docker driver reports them;
 * `listens` on real host processes (a loopback seat whose processes are children of this test,
 * renamed through argv[0]) and then on a real seat: a real llama-server in a seat container, a
 * python server beside it, all judged from the host's /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { seatHandleFor } from '../../runner/grading/seat-handle.js';
import { newVerifySession } from '../../runner/grading/verify.js';
import { DockerDriver } from '../../runner/sandbox/docker-driver.js';
import { parseSeatPlan } from '../../runner/sandbox/driver.js';
import { hasEngine } from '../../test/helpers/docker-env.js';
import { requireImage } from '../../test/helpers/images.js';
import { closedPort, tempSeat, type TempSeat } from '../__helpers__/temp-seat.js';
import { show } from '../shared/assertions.js';
import { optionValue, processProbe } from './process.js';
import { Deadline, runProbe, type ProbeOutcome, type SeatHandle, type SeatProcess } from '../probe.js';

// Rows as the Docker driver reports them (`docker top -o pid,ppid,user,args`, host PIDs).
const SERVER: SeatProcess = {
  hostPid: 48213,
  ppid: 48190,
  user: 'candidate',
  command: '/usr/local/bin/llama-server -m /opt/exam/models/tiny-llama-q8_0.gguf -t 2 --ctx-size=2048 -np 2 --host 0.0.0.0 --port 8080 --metrics',
  role: 'workspace',
};
const SHELL: SeatProcess = { hostPid: 48190, ppid: 48101, user: 'candidate', command: 'bash', role: 'workspace' };
const IDLE: SeatProcess = { hostPid: 48101, ppid: 48080, user: 'root', command: 'sleep infinity', role: 'workspace' };

let seat: TempSeat;
beforeEach(async () => {
  seat = await tempSeat();
  seat.processes = [IDLE, SHELL, SERVER];
});
afterEach(async () => {
  await seat.cleanup();
});

const run = (params: Record<string, unknown>, on: SeatHandle = seat): Promise<ProbeOutcome> =>
  runProbe(processProbe, on, { kind: 'process', match: { exe: 'llama-server' }, ...params }, Deadline.after(30_000));

const SERVE_ARGS = {
  running: true,
  count: { min: 1, max: 1 },
  user: 'candidate',
  args: [
    { flags: ['-m', '--model'], equals: '/opt/exam/models/tiny-llama-q8_0.gguf' },
    { flags: ['-t', '--threads'], equals: '2' },
    { flags: ['-c', '--ctx-size'], equals: '2048' },
    { flags: ['-np', '--parallel'], equals: '2' },
  ],
};

interface Assert {
  id: string;
  ok: boolean;
  actual: string;
}
const assertions = (o: ProbeOutcome): Assert[] => {
  const n = o.evidence.find((e) => e.kind === 'note' && (e.text.en === 'expectations checked' || e.text.en === 'the other expectations'));
  return (n?.kind === 'note' ? n.data?.['assertions'] : []) as Assert[];
};
const failedIds = (o: ProbeOutcome): string[] => assertions(o).filter((a) => !a.ok).map((a) => a.id);
const assertion = (o: ProbeOutcome, id: string): Assert | undefined => assertions(o).find((a) => a.id === id);

describe('process probe: options, users, counts', () => {
  it('passes the junior serve task’s option checks on a correctly started llama-server', async () => {
    const o = await run({ expect: SERVE_ARGS });
    expect(o.status, JSON.stringify(o)).toBe('pass');
    expect(JSON.stringify(o.evidence)).toContain('"hostPid":48213');
  });

  it('running: false passes when no such process exists', async () => {
    seat.processes = [IDLE, SHELL];
    expect((await run({ expect: { running: false } })).status).toBe('pass');
  });

  it('fails when the server is not running at all; its port is then not its own either', async () => {
    seat.processes = [IDLE, SHELL];
    const o = await run({ expect: { ...SERVE_ARGS, listens: await closedPort() } });
    expect(o.status).toBe('fail');
    expect(o.summary.en).toContain('(count, user, arg:-m|--model, arg:-t|--threads, arg:-c|--ctx-size, arg:-np|--parallel, listens, accepts)');
    expect(assertion(o, 'listens')?.actual).toBe('(no process)');
  });

  it('fails on a wrong option, a root-run server and a second copy', async () => {
    seat.processes = [
      IDLE,
      { ...SERVER, command: SERVER.command.replace('-t 2', '-t 8') },
      { ...SERVER, hostPid: 48300, user: 'root' },
    ];
    const o = await run({ expect: SERVE_ARGS });
    expect(o.status).toBe('fail');
    expect(o.summary.en).toContain('(count, user, arg:-t|--threads)');
  });

  it('a process in another container of the seat does not count', async () => {
    seat.processes = [IDLE, { ...SERVER, role: 'gateway' }];
    expect((await run({})).status).toBe('fail');
    expect((await run({ container: 'gateway' })).status).toBe('pass');
  });

  it('the host process table unreadable (engine down) is an error', async () => {
    seat.breakPath(true);
    const o = await run({});
    expect(o.status).toBe('error');
  });
});

// ---------------------------------------------------------------------------------------------
// listens, on real processes of this host

interface Started {
  proc: ChildProcess;
  row: SeatProcess;
  /** Loopback port it listens on, when it does. */
  port?: number;
  /** The worker it started, when it did. */
  child?: SeatProcess;
}

const started: ChildProcess[] = [];
afterEach(() => {
  for (const p of started.splice(0)) p.kill('SIGKILL');
});

const LISTEN = "const s=require('net').createServer(c=>c.end()).listen(0,'127.0.0.1',()=>console.log(JSON.stringify({port:s.address().port})))";
const IDLE_JS = "setInterval(()=>{},1e6);console.log('{}')";
// A launcher that does not listen itself; its worker does (and dies with it: its stdin closes).
const WORKER_JS = `process.stdin.on('end',()=>process.exit());process.stdin.resume();${LISTEN}`;
const LAUNCH = `const c=require('child_process').spawn(process.execPath,['-e',${JSON.stringify(WORKER_JS)}],{argv0:'worker',stdio:['pipe','pipe','inherit']});c.stdout.once('data',d=>console.log(JSON.stringify({...JSON.parse(d),child:c.pid})));setInterval(()=>{},1e6)`;

/** A node process named `name` (argv[0]) running `script`; its seat row is what ps would list. */
async function start(name: string, script: string): Promise<Started> {
  const proc = spawn(process.execPath, ['-e', script], { argv0: name, stdio: ['ignore', 'pipe', 'inherit'] });
  started.push(proc);
  const line = await new Promise<string>((resolve, reject) => {
    proc.once('error', reject);
    proc.once('exit', (code) => reject(new Error(`${name} exited (${code})`)));
    proc.stdout!.once('data', (d: Buffer) => resolve(d.toString()));
  });
  const said = JSON.parse(line) as { port?: number; child?: number };
  const row: SeatProcess = { hostPid: proc.pid!, ppid: process.pid, user: 'candidate', command: `${name} -e ${script}`, role: 'workspace' };
  return {
    proc,
    row,
    ...(said.port !== undefined ? { port: said.port } : {}),
    ...(said.child !== undefined
      ? { child: { hostPid: said.child, ppid: proc.pid!, user: 'candidate', command: `worker -e ${WORKER_JS}`, role: 'workspace' } }
      : {}),
  };
}

describe('process probe: listens, judged from the host’s /proc', () => {
  it('passes when the matched process holds the listening socket; the evidence names it', async () => {
    const srv = await start('llama-server', LISTEN);
    seat.processes = [srv.row];
    const o = await run({ expect: { listens: srv.port } });
    expect(o.status, JSON.stringify(o)).toBe('pass');
    expect(assertion(o, 'listens')?.actual).toBe(`held by ${show(srv.row.command, 120)} (pid ${srv.row.hostPid})`);
    const who = o.evidence.find((e) => e.kind === 'note' && e.text.en.startsWith(`port ${srv.port} is held by the matching process`));
    expect(who?.kind === 'note' && who.data).toMatchObject({
      verdict: 'owned',
      sockets: [{ family: 'tcp', address: `127.0.0.1:${srv.port}`, ownedByMatch: true, holders: [{ hostPid: srv.row.hostPid, matchedTree: true }] }],
    });
  });

  it('a worker the matched process started may hold it; the same worker beside an unrelated match may not', async () => {
    const launcher = await start('llama-server', LAUNCH);
    const child = launcher.child!;
    seat.processes = [launcher.row, child];
    const o = await run({ expect: { listens: launcher.port } });
    expect(o.status, JSON.stringify(o)).toBe('pass');
    expect(assertion(o, 'listens')?.actual).toContain(`(pid ${child.hostPid})`);
    // Reparented under someone else (as if started beside the server), it is another program.
    seat.processes = [launcher.row, { ...child, ppid: process.pid }];
    const other = await run({ expect: { listens: launcher.port } });
    expect(other.status).toBe('fail');
    expect(failedIds(other)).toEqual(['listens']);
  });

  it('fails when another program holds the port while the matched one runs idle; the evidence names the holder', async () => {
    const idle = await start('llama-server', IDLE_JS);
    const py = await start('python3', LISTEN);
    seat.processes = [idle.row, py.row];
    const o = await run({ expect: { count: { min: 1, max: 1 }, listens: py.port } });
    expect(o.status).toBe('fail');
    // The port answers: only ownership tells the two apart.
    expect(failedIds(o)).toEqual(['listens']);
    expect(assertion(o, 'accepts')?.ok).toBe(true);
    expect(assertion(o, 'listens')?.actual).toBe(`held by ${show(py.row.command, 120)} (pid ${py.row.hostPid}), not by the matching process`);
    expect(JSON.stringify(o.evidence)).toContain(`"holders":[{"hostPid":${py.row.hostPid},"command":"python3 -e`);
    // The same seat judged for the python server passes: the verdict follows the socket.
    expect((await run({ match: { exe: 'python3' }, expect: { listens: py.port } })).status).toBe('pass');
  });

  it('fails when nothing listens on the port', async () => {
    const idle = await start('llama-server', IDLE_JS);
    seat.processes = [idle.row];
    const port = await closedPort();
    const o = await run({ expect: { listens: port } });
    expect(o.status).toBe('fail');
    expect(failedIds(o)).toEqual(['listens', 'accepts']);
    expect(assertion(o, 'listens')?.actual).toBe(`no socket listens on port ${port} in the process's network namespace`);
    expect(assertion(o, 'accepts')?.actual).toBe('ECONNREFUSED');
  });

  it('fails when the matched process exited between listing and looking', async () => {
    const idle = await start('llama-server', IDLE_JS);
    const py = await start('python3', LISTEN);
    idle.proc.kill('SIGKILL');
    await new Promise((r) => idle.proc.once('exit', r));
    seat.processes = [idle.row, py.row];
    const o = await run({ expect: { listens: py.port } });
    expect(o.status).toBe('fail');
    expect(assertion(o, 'listens')?.actual).toBe('the matching process exited during the check');
  });
});

describe('process probe: identity, judged from the host’s /proc', () => {
  const digest = (file: string): { path: string; size: number; sha256: string } => {
    const data = readFileSync(file);
    return { path: file, size: data.length, sha256: createHash('sha256').update(data).digest('hex') };
  };
  const HOLD = (file: string): string => `const fd=require('fs').openSync(${JSON.stringify(file)},'r');setInterval(()=>{},1e6);console.log('{}')`;

  it('argv[0] says llama-server, the kernel runs another program: executable fails, naming it', async () => {
    // This very node binary stands for "the image's llama-server" first, then /bin/sh does.
    const srv = await start('llama-server', IDLE_JS);
    seat.processes = [srv.row];
    seat.imageFile = async () => digest(process.execPath);
    expect((await run({ expect: { executable: '/usr/local/bin/llama-server' } })).status).toBe('pass');
    seat.imageFile = async () => digest(realpathSync('/bin/sh'));
    const o = await run({ expect: { executable: '/usr/local/bin/llama-server' } });
    expect(o.status).toBe('fail');
    expect(failedIds(o)).toEqual(['executable']);
    expect(assertion(o, 'executable')?.actual).toContain(`pid ${srv.row.hostPid} runs ${realpathSync(process.execPath)}`);
  });

  it('opens: the file held open passes, a copy with the same content passes, another file fails', async () => {
    const model = join(seat.root, 'model.gguf');
    const copy = join(seat.root, 'copy.gguf');
    const other = join(seat.root, 'other.gguf');
    writeFileSync(model, Buffer.alloc(4096, 7));
    writeFileSync(copy, Buffer.alloc(4096, 7));
    writeFileSync(other, Buffer.alloc(4096, 8)); // same size, other content
    for (const [held, want] of [[model, 'pass'], [copy, 'pass'], [other, 'fail']] as const) {
      const srv = await start('llama-server', HOLD(held));
      seat.processes = [srv.row];
      const o = await run({ expect: { opens: [model] } });
      expect(o.status, `${held}: ${JSON.stringify(o.evidence)}`).toBe(want);
      if (want === 'fail') expect(assertion(o, `opens:${model}`)?.actual).toBe(`pid ${srv.row.hostPid} holds neither ${model} nor a copy of it`);
      srv.proc.kill('SIGKILL');
    }
  });

  it('identity without a host view (pod PIDs) is an error, never a pass', async () => {
    const srv = await start('llama-server', IDLE_JS);
    seat.processes = [{ ...srv.row, pidNamespace: 'pod' }];
    seat.imageFile = async () => digest(process.execPath);
    const o = await run({ expect: { executable: '/usr/local/bin/llama-server' } });
    expect(o.status).toBe('error');
    expect(o.error?.code).toBe('PROBE_HOST_PIDS_UNAVAILABLE');
  });

  it('a seat handle that cannot read the image: error PROBE_NEEDS_ENGINE', async () => {
    const srv = await start('llama-server', IDLE_JS);
    seat.processes = [srv.row];
    const o = await run({ expect: { executable: '/usr/local/bin/llama-server' } });
    expect(o.status).toBe('error');
    expect(o.error?.code).toBe('PROBE_NEEDS_ENGINE');
  });
});

describe('process probe: listens cannot be judged', () => {
  it('pod PIDs (Kubernetes): error PROBE_HOST_PIDS_UNAVAILABLE, even though the port answers', async () => {
    const srv = await start('llama-server', LISTEN);
    seat.processes = [{ ...srv.row, pidNamespace: 'pod' }];
    const o = await run({ expect: { listens: srv.port } });
    expect(o.status).toBe('error');
    expect(o.error).toMatchObject({ code: 'PROBE_HOST_PIDS_UNAVAILABLE', fault: 'infrastructure' });
    expect(assertion(o, 'accepts')?.ok).toBe(true);
  });

  it('PIDs that name other processes on this host (an engine on another machine): error, never a judgement on the wrong process', async () => {
    const srv = await start('python3', LISTEN);
    // The listed PIDs exist here but run something else: this test's own runner, the python server.
    seat.processes = [
      { ...SERVER, hostPid: process.pid },
      { ...SHELL, hostPid: srv.row.hostPid },
    ];
    const o = await run({ expect: { listens: srv.port } });
    expect(o.status).toBe('error');
    expect(o.error?.code).toBe('PROBE_HOST_PIDS_UNAVAILABLE');
  });

  it('another expectation failing settles it: fail, with the unjudged part noted', async () => {
    const srv = await start('llama-server', LISTEN);
    seat.processes = [{ ...srv.row, pidNamespace: 'pod' }];
    const o = await run({ expect: { user: 'root', listens: srv.port } });
    expect(o.status).toBe('fail');
    expect(failedIds(o)).toEqual(['user']);
    expect(JSON.stringify(o.evidence)).toContain('PROBE_HOST_PIDS_UNAVAILABLE');
  });

  // Run as an unprivileged user, the grader may read a root process's cmdline but not its namespaces or fds.
  it.skipIf(process.getuid?.() !== 0)('a grader without root: error PROBE_HOST_PROC_DENIED', async () => {
    const srv = await start('llama-server', LISTEN);
    const script = `
      const { tempSeat } = await import(${JSON.stringify(new URL('../__helpers__/temp-seat.ts', import.meta.url).pathname)});
      const { processProbe } = await import(${JSON.stringify(new URL('./process.ts', import.meta.url).pathname)});
      const { Deadline, runProbe } = await import(${JSON.stringify(new URL('../probe.ts', import.meta.url).pathname)});
      // Privileges drop only after the modules load, so the checkout may sit where nobody cannot read.
      process.setgroups([]); process.setgid(65534); process.setuid(65534);
      const seat = await tempSeat();
      seat.processes = ${JSON.stringify([srv.row])};
      const o = await runProbe(processProbe, seat, { kind: 'process', match: { exe: 'llama-server' }, expect: { listens: ${srv.port} } }, Deadline.after(20000));
      await seat.cleanup();
      console.log(JSON.stringify({ uid: process.getuid(), status: o.status, error: o.error }));`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise((r) => child.once('exit', r));
    expect(code, err).toBe(0);
    expect(JSON.parse(out)).toMatchObject({ uid: 65534, status: 'error', error: { code: 'PROBE_HOST_PROC_DENIED', fault: 'infrastructure' } });
  }, 60_000);
});

describe('option parsing', () => {
  it('reads short, long and --long=value spellings; the last one wins', () => {
    const argv = ['llama-server', '-t', '2', '--threads=4', '-c', '512'];
    expect(optionValue(argv, ['-t', '--threads'])).toBe('4');
    expect(optionValue(argv, ['-c', '--ctx-size'])).toBe('512');
    expect(optionValue(argv, ['-np', '--parallel'])).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------
// A real seat: the Docker driver's adapter, host PIDs from `docker top`, the container's own netns

describe.skipIf(!hasEngine)('process probe on a real seat: llama-server and a python server beside it', () => {
  const driver = new DockerDriver();
  const ref = { session: newVerifySession(), seat: 'process-listens' };
  let real: SeatHandle;

  beforeAll(async () => {
    const ws = await requireImage('workspace-cpu');
    await driver.provision(parseSeatPlan({ ...ref, task: 'process-listens-test', workspace: { image: ws }, resources: { cpus: 1, memoryMiB: 1024 } }));
    real = seatHandleFor({ driver, ref, task: 'process-listens-test' });
    const r = await driver.exec(ref, {
      cmd: [
        'bash',
        '-c',
        '(setsid nohup llama-server -m /opt/models/tiny-llama-f16.gguf --host 0.0.0.0 --port 8080 -t 1 -c 512 >/tmp/srv.log 2>&1 </dev/null &) && ' +
          '(setsid nohup python3 -m http.server 8081 >/tmp/py.log 2>&1 </dev/null &) && ' +
          'for i in $(seq 120); do curl -fs localhost:8080/health >/dev/null && curl -fs -o /dev/null localhost:8081/ && exit 0; sleep 0.5; done; cat /tmp/srv.log; exit 1',
      ],
    });
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
  }, 180_000);
  afterAll(async () => {
    await driver.sweep({ session: ref.session });
  });

  it('llama-server owns 8080 in its container’s network namespace: pass', async () => {
    const o = await run({ expect: { user: 'candidate', listens: 8080 } }, real);
    expect(o.status, JSON.stringify(o)).toBe('pass');
    expect(assertion(o, 'listens')?.actual).toMatch(/^held by llama-server -m \S+ --host 0\.0\.0\.0 --port 8080 .*\(pid \d+\)$/);
  });

  it('identity: the image’s llama-server with the given model mapped passes', async () => {
    const o = await run({ expect: { listens: 8080, executable: '/usr/local/bin/llama-server', opens: ['/opt/models/tiny-llama-f16.gguf'] } }, real);
    expect(o.status, JSON.stringify(o)).toBe('pass');
    expect(assertion(o, 'opens:/opt/models/tiny-llama-f16.gguf')?.actual).toMatch(/^pid \d+ holds \/opt\/models\/tiny-llama-f16\.gguf$/);
  });

  it('identity: an imitation named llama-server (exec -a, or a script of that name) fails executable', async () => {
    const script = '#!/usr/bin/python3\nimport http.server, socketserver\nsocketserver.TCPServer(("0.0.0.0", 8083), http.server.SimpleHTTPRequestHandler).serve_forever()\n';
    await driver.writeFiles(ref, [{ path: '/tmp/fake/llama-server', content: script, mode: 0o755, uid: 1000, gid: 1000 }]);
    const r = await driver.exec(ref, {
      cmd: [
        'bash',
        '-c',
        '(setsid nohup bash -c "exec -a llama-server python3 -m http.server 8082" >/tmp/fake1.log 2>&1 </dev/null &) && ' +
          '(setsid nohup /tmp/fake/llama-server --port 8083 >/tmp/fake2.log 2>&1 </dev/null &) && ' +
          'for i in $(seq 60); do curl -fs -o /dev/null localhost:8082/ && curl -fs -o /dev/null localhost:8083/ && exit 0; sleep 0.5; done; cat /tmp/fake*.log; exit 1',
      ],
    });
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    for (const port of [8082, 8083]) {
      const o = await run({ match: { commandMatches: `(^| )(8082|--port ${port})( |$)` }, expect: { listens: port, executable: '/usr/local/bin/llama-server' } }, real);
      expect(o.status, JSON.stringify(o)).toBe('fail');
      expect(failedIds(o)).toEqual(['executable']);
      expect(assertion(o, 'executable')?.actual).toMatch(/runs \/usr\/bin\/python3/);
    }
  }, 60_000);

  it('identity: a copy of the real binary serving another model passes executable and fails opens', async () => {
    const r = await driver.exec(ref, {
      cmd: [
        'bash',
        '-c',
        'cp /usr/local/bin/llama-server /tmp/llama-server && llama-quantize /opt/models/tiny-llama-f16.gguf /tmp/other.gguf Q8_0 >/dev/null 2>&1 && ' +
          '(setsid nohup /tmp/llama-server -m /tmp/other.gguf --host 0.0.0.0 --port 8084 -t 1 -c 512 >/tmp/copy.log 2>&1 </dev/null &) && ' +
          'for i in $(seq 120); do curl -fs localhost:8084/health >/dev/null && exit 0; sleep 0.5; done; cat /tmp/copy.log; exit 1',
      ],
    });
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    const o = await run({ match: { commandMatches: '--port 8084' }, expect: { listens: 8084, executable: '/usr/local/bin/llama-server', opens: ['/opt/models/tiny-llama-f16.gguf'] } }, real);
    expect(o.status, JSON.stringify(o)).toBe('fail');
    expect(failedIds(o)).toEqual(['opens:/opt/models/tiny-llama-f16.gguf']);
  }, 120_000);

  it('8081 answers but belongs to python: fail, naming python; an unused port: fail', async () => {
    const o = await run({ expect: { listens: 8081 } }, real);
    expect(o.status).toBe('fail');
    expect(failedIds(o)).toEqual(['listens']);
    expect(assertion(o, 'listens')?.actual).toMatch(/^held by python3 -m http\.server 8081 \(pid \d+\), not by the matching process$/);
    const none = await run({ expect: { listens: 8099 } }, real);
    expect(none.status).toBe('fail');
    expect(failedIds(none)).toEqual(['listens', 'accepts']);
  });
});
