import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { closedPort, tempSeat, type TempSeat } from './__helpers__/temp-seat.js';
import { optionValue, processProbe } from './process.js';
import { Deadline, runProbe, type ProbeOutcome, type SeatProcess } from './probe.js';

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

let server: Server;
let port: number;
beforeAll(async () => {
  server = createServer((s) => s.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

let seat: TempSeat;
beforeEach(async () => {
  seat = await tempSeat();
  seat.ports.set(8080, port);
  seat.processes = [IDLE, SHELL, SERVER];
});
afterEach(async () => {
  await seat.cleanup();
});

const run = (params: Record<string, unknown>): Promise<ProbeOutcome> =>
  runProbe(processProbe, seat, { kind: 'process', match: { exe: 'llama-server' }, ...params }, Deadline.after(5000));

const SERVE_EXPECT = {
  running: true,
  count: { min: 1, max: 1 },
  user: 'candidate',
  listens: 8080,
  args: [
    { flags: ['-m', '--model'], equals: '/opt/exam/models/tiny-llama-q8_0.gguf' },
    { flags: ['-t', '--threads'], equals: '2' },
    { flags: ['-c', '--ctx-size'], equals: '2048' },
    { flags: ['-np', '--parallel'], equals: '2' },
  ],
};

describe('process probe: work done right', () => {
  it('passes the junior serve task’s check on a correctly started llama-server', async () => {
    const o = await run({ expect: SERVE_EXPECT });
    expect(o.status, JSON.stringify(o)).toBe('pass');
    expect(JSON.stringify(o.evidence)).toContain('"hostPid":48213');
  });

  it('running: false passes when no such process exists', async () => {
    seat.processes = [IDLE, SHELL];
    expect((await run({ expect: { running: false } })).status).toBe('pass');
  });
});

describe('process probe: work absent or wrong', () => {
  it('fails when the server is not running at all', async () => {
    seat.processes = [IDLE, SHELL];
    const o = await run({ expect: SERVE_EXPECT });
    expect(o.status).toBe('fail');
    // The port still answers (something else holds it), so only the process checks fail.
    expect(o.summary.en).toContain('(count, user, arg:-m|--model, arg:-t|--threads, arg:-c|--ctx-size, arg:-np|--parallel)');
  });

  it('fails on a wrong option, a root-run server and a second copy', async () => {
    seat.processes = [
      IDLE,
      { ...SERVER, command: SERVER.command.replace('-t 2', '-t 8') },
      { ...SERVER, hostPid: 48300, user: 'root' },
    ];
    const o = await run({ expect: SERVE_EXPECT });
    expect(o.status).toBe('fail');
    expect(o.summary.en).toContain('(count, user, arg:-t|--threads)');
  });

  it('fails when the process runs but its port does not accept connections', async () => {
    seat.ports.set(8080, await closedPort());
    const o = await run({ expect: { listens: 8080 } });
    expect(o.status).toBe('fail');
    expect(JSON.stringify(o.evidence)).toContain('ECONNREFUSED');
  });

  it('a process in another container of the seat does not count', async () => {
    seat.processes = [IDLE, { ...SERVER, role: 'gateway' }];
    expect((await run({})).status).toBe('fail');
    expect((await run({ container: 'gateway' })).status).toBe('pass');
  });
});

describe('process probe: could not judge', () => {
  it('the host process table unreadable (engine down) is an error', async () => {
    seat.breakPath(true);
    const o = await run({});
    expect(o.status).toBe('error');
  });
});

describe('option parsing', () => {
  it('reads short, long and --long=value spellings; the last one wins', () => {
    const argv = ['llama-server', '-t', '2', '--threads=4', '-c', '512'];
    expect(optionValue(argv, ['-t', '--threads'])).toBe('4');
    expect(optionValue(argv, ['-c', '--ctx-size'])).toBe('512');
    expect(optionValue(argv, ['-np', '--parallel'])).toBeUndefined();
  });
});
