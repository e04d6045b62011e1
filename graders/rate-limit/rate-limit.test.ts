/**
 * The rate-limit probe against a real nginx (Debian's nginx-light) with limit_req, and the
 * leaky-bucket arithmetic checked against what that nginx actually did.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { hostTool } from '../__helpers__/host-tools.js';
import { closedPort, tempSeat, type TempSeat } from '../__helpers__/temp-seat.js';
import { judgeLimitReq } from '../parsers/leaky-bucket.js';
import { limitSpecFor, parseNginxConfig, summarizeNginxConfig } from '../parsers/nginx-config.js';
import { Deadline, runProbe, type ProbeOutcome } from '../probe.js';
import { rateLimitProbe } from './rate-limit.js';

const NGINX = '/usr/sbin/nginx';

const config = (dir: string, port: number): string => `
daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path ${dir}/cb; proxy_temp_path ${dir}/px; fastcgi_temp_path ${dir}/fc;
    uwsgi_temp_path ${dir}/uw; scgi_temp_path ${dir}/sc;
    limit_req_zone $binary_remote_addr zone=slow:1m rate=1r/s;
    limit_req_zone $binary_remote_addr zone=fast:1m rate=10r/s;
    limit_req_status 429;
    # Static files, not "return 200": return runs in the rewrite phase, before limit_req
    # (preaccess) is ever consulted, so a location that only returns is never limited.
    root ${dir}/www;
    server {
        listen 127.0.0.1:${port};
        location /slow/ { limit_req zone=slow burst=5 nodelay; }
        location /fast/ { limit_req zone=fast burst=3 nodelay; }
        location /open/ { }
        location /returns/ { limit_req zone=fast burst=1 nodelay; return 200 "ok\\n"; }
    }
}
`;

type BurstNote = { allowed: number; limited: number; other: number; sentMs: number[]; outcomes: (number | string)[] };
const burst = (o: ProbeOutcome): BurstNote => {
  const n = o.evidence.find((e) => e.kind === 'note' && e.text.en === 'burst result');
  return (n?.kind === 'note' ? n.data : {}) as unknown as BurstNote;
};

describe.skipIf(!hostTool(NGINX, 'nginx-light'))('rate-limit probe on a real nginx', () => {
  let dir: string;
  let port: number;
  let proc: ChildProcess;
  let text: string;
  let seat: TempSeat;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'deploylab-nginx-'));
    port = await closedPort();
    text = config(dir, port);
    await writeFile(join(dir, 'nginx.conf'), text);
    for (const d of ['slow', 'fast', 'open']) {
      await mkdir(join(dir, 'www', d), { recursive: true });
      await writeFile(join(dir, 'www', d, 'index.html'), 'ok\n');
    }
    proc = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: 'ignore' });
    const until = Date.now() + 10_000;
    while (!(await fetch(`http://127.0.0.1:${port}/open/`).then((r) => r.ok, () => false))) {
      if (Date.now() > until) throw new Error(`nginx did not start: ${await readFile(join(dir, 'error.log'), 'utf8').catch(() => '')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  afterAll(async () => {
    proc?.kill('SIGQUIT');
    await new Promise((r) => proc?.once('exit', r));
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    seat = await tempSeat();
    seat.ports.set(8080, port);
  });
  afterEach(async () => {
    await seat.cleanup();
  });

  const run = (params: Record<string, unknown>): Promise<ProbeOutcome> =>
    runProbe(rateLimitProbe, seat, { kind: 'rate-limit', target: { port: 8080 }, ...params }, Deadline.after(20_000));
  const specOf = (path: string) => {
    const s = summarizeNginxConfig(parseNginxConfig(text));
    return limitSpecFor(s, s.servers[0]!.locations.find((l) => l.match[0] === path)!)!;
  };

  it('1r/s burst=5 nodelay: 10 at once → exactly 6 allowed, 4 limited, as the arithmetic says', async () => {
    const o = await run({ path: '/slow/', requests: 10, concurrency: 10, expect: { minAllowed: 6, maxAllowed: 6, minLimited: 4, limitedStatus: [429] } });
    expect(o.status, JSON.stringify(o)).toBe('pass');
    const b = burst(o);
    expect([b.allowed, b.limited, b.other]).toEqual([6, 4, 0]);
    const j = judgeLimitReq(specOf('/slow/'), [...b.sentMs].sort((x, y) => x - y), { served: b.allowed, rejected: b.limited }, 20);
    expect(j.servedRange).toEqual([6, 6]);
    expect(j.consistent).toBe(true);
  });

  it('10r/s burst=3 nodelay, 25 sent one after another: nginx’s split lies in the predicted range', async () => {
    const o = await run({ path: '/fast/', requests: 25, concurrency: 1, expect: { minAllowed: 4, minLimited: 1, limitedStatus: [429] } });
    expect(o.status, JSON.stringify(o)).toBe('pass');
    const b = burst(o);
    const j = judgeLimitReq(specOf('/fast/'), b.sentMs, { served: b.allowed, rejected: b.limited }, 15);
    expect(j.consistent, JSON.stringify({ j, sentMs: b.sentMs, outcomes: b.outcomes })).toBe(true);
  });

  it('limit_req beside "return" is never applied: the config reads limited, the live check says not', async () => {
    const s = summarizeNginxConfig(parseNginxConfig(text));
    expect(s.servers[0]!.locations.find((l) => l.match[0] === '/returns/')!.limitReq).toEqual([{ zone: 'fast', burst: 1, nodelay: true, line: 22 }]);
    const o = await run({ path: '/returns/', requests: 10, concurrency: 10, expect: { minAllowed: 1, minLimited: 1 } });
    expect(o.status).toBe('fail');
    expect(burst(o)).toMatchObject({ allowed: 10, limited: 0 });
  });

  it('a location without limit_req fails the check', async () => {
    const o = await run({ path: '/open/', requests: 10, concurrency: 10, expect: { minAllowed: 1, minLimited: 1 } });
    expect(o.status).toBe('fail');
    expect(burst(o)).toMatchObject({ allowed: 10, limited: 0 });
    expect(o.summary.en).toContain('(limited)');
  });

  it('no gateway listening: fail; the harness path down: error', async () => {
    seat.ports.set(8080, await closedPort());
    const params = { path: '/slow/', requests: 3, concurrency: 3, expect: { minAllowed: 1, minLimited: 1 } };
    expect((await run(params)).status).toBe('fail');
    seat.breakPath(true);
    expect((await run(params)).status).toBe('error');
  });
});
