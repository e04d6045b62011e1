/**
 * Tools for judging the `load` probe's figures: a node:http server in a process of its own that
 * answers each request after a deterministic pseudo-random MIN..MIN+SPAN ms (uniform, mulberry32),
 * so the true percentiles are known, and wrk, an independent load tool, on the same endpoint.
 * Used by the load-vs-wrk cross-check test and by bench/load-bench.ts. Traffic goes only to
 * 127.0.0.1 and every run is bounded.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const WRK = '/usr/bin/wrk';
export const hasWrk = existsSync(WRK);

export interface LatencyFigures {
  requests: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
}

const serverSource = (minMs: number, spanMs: number): string => `
const http = require('node:http');
let a = 20240607 >>> 0;
const next = () => {
  a = (a + 0x6d2b79f5) >>> 0;
  let t = a;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const server = http.createServer((req, res) => {
  req.resume();
  setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\\n'), ${minMs} + next() * ${spanMs});
});
server.listen(0, '127.0.0.1', () => process.stdout.write('PORT ' + server.address().port + '\\n'));
process.stdin.on('end', () => process.exit(0)).resume();
`;

/**
 * The server runs in a process of its own, as a candidate's service would: sharing the caller's
 * event loop would add the probe's own client work to the server's delays (and not wrk's). It
 * exits when the caller's end of its stdin closes, so it cannot outlive the caller.
 */
export async function startPacedServer(minMs: number, spanMs: number): Promise<{ port: number; child: ChildProcess; stop: () => void }> {
  const child = spawn(process.execPath, ['-e', serverSource(minMs, spanMs)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /PORT (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`paced server exited with ${code}`)));
  });
  return {
    port,
    child,
    stop: () => {
      child.stdin!.end();
      child.kill();
    },
  };
}

const DONE_HOOK = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK_RESULT %d %d %d %d %d %d\\n",
    summary.requests, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99)))
end
`;

/** wrk for a bounded time at the given concurrency; exact percentiles from its Lua done() hook (µs, HdrHistogram). */
export async function runWrk(url: string, seconds: number, concurrency: number): Promise<LatencyFigures & { errors: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'load-vs-wrk-'));
  try {
    const script = join(dir, 'done.lua');
    writeFileSync(script, DONE_HOOK);
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(WRK, ['-t1', `-c${concurrency}`, `-d${seconds}s`, '--timeout', '5s', '--latency', '-s', script, url], { timeout: (seconds + 20) * 1000 }, (err, out, errOut) =>
        err ? reject(new Error(`wrk failed: ${err.message}\n${errOut}`)) : resolve(out),
      ),
    );
    const m = /^WRK_RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$/m.exec(stdout);
    if (!m) throw new Error(`no WRK_RESULT line in wrk's output:\n${stdout}`);
    const us = (i: number): number => Number(m[i]) / 1000;
    return { requests: Number(m[1]), errors: Number(m[2]), p50: us(3), p90: us(4), p95: us(5), p99: us(6) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
