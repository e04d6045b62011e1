/**
 * How far the `load` probe's latency figures drift from an independent tool when the host's CPUs
 * are busy, and what raising the client's CPU priority (as the probe does where it may) is worth.
 * A paced server (uniform 20–80 ms, so p50 ≈ 50 ms and p95 ≈ 77 ms in truth) in its own process;
 * per round, in rotating order: the probe's load client as graders run it (raised priority), the
 * same client at normal priority, and wrk (the baseline, measured in the same round). Each client
 * run is warmed with one request per connection first, as the probe does. Conditions: a quiet
 * host, then N busy-loop processes that stop by themselves. Prints medians and ratios to wrk.
 *
 *   npm run bench:load -- [--rounds 3] [--hogs 0,12] [--requests 300] [--concurrency 4]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { figuresOf, runLoad } from '../graders/load/load-client.js';
import { Deadline } from '../graders/probe.js';
import { hasWrk, runWrk, startPacedServer, WRK, type LatencyFigures } from '../test/helpers/paced-server.js';

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
};
const rounds = Number(arg('rounds', '3'));
const hogCounts = arg('hogs', '0,12').split(',').map(Number);
const requests = Number(arg('requests', '300'));
const concurrency = Number(arg('concurrency', '4'));

async function clientOnce(port: number, raise: boolean): Promise<LatencyFigures & { raised: boolean }> {
  const deadline = Deadline.after(120_000);
  const target = { url: new URL(`http://127.0.0.1:${port}/`), method: 'GET', headers: {} };
  try {
    await runLoad(target, { requests: concurrency, concurrency, timeoutMs: 5000, raisePriority: raise }, deadline);
    const run = await runLoad(target, { requests, concurrency, timeoutMs: 5000, raisePriority: raise }, deadline);
    if (run.errors > 0) throw new Error(`the load client saw ${run.errors} failed request(s): ${JSON.stringify(Object.fromEntries(run.statuses))}`);
    const f = figuresOf(run, requests, concurrency).figures;
    return { requests, p50: f.p50Ms!, p90: f.p90Ms!, p95: f.p95Ms!, p99: f.p99Ms!, raised: run.clientPriorityRaised };
  } finally {
    deadline.dispose();
  }
}

/** Busy loops that end by themselves after `ms`, and are killed when the condition ends anyway. */
function startHogs(n: number, ms: number): ChildProcess[] {
  return Array.from({ length: n }, () => spawn(process.execPath, ['-e', `const end = Date.now() + ${ms}; while (Date.now() < end) {}`], { stdio: 'ignore' }));
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  if (!hasWrk) throw new Error(`${WRK} is missing: npx deploylab host prepare --test-tools (package wrk)`);
  const server = await startPacedServer(20, 60);
  const url = `http://127.0.0.1:${server.port}/`;
  const wrkSeconds = Math.max(2, Math.round((requests * 0.05) / concurrency));
  console.log(`load client vs wrk: ${requests} requests at concurrency ${concurrency} (wrk ${wrkSeconds} s), paced server 20–80 ms (true p50 ≈ 50, p95 ≈ 77 ms); ${rounds} round(s) per condition`);
  try {
    for (const hogs of hogCounts) {
      const kinds = ['probe (raised)', 'probe (normal)', 'wrk'] as const;
      const got: Record<string, LatencyFigures[]> = Object.fromEntries(kinds.map((k) => [k, []]));
      const loads: number[] = [];
      let raised = true;
      const hogProcs = startHogs(hogs, rounds * (kinds.length * (wrkSeconds + 8) + 10) * 1000);
      try {
        // Let the busy loops take the cores before measuring.
        await new Promise((r) => setTimeout(r, hogs ? 2000 : 0));
        for (let r = 0; r < rounds; r++) {
          const order = kinds.map((_, i) => kinds[(i + r) % kinds.length]!);
          for (const k of order) {
            if (k === 'wrk') got[k]!.push(await runWrk(url, wrkSeconds, concurrency));
            else {
              const f = await clientOnce(server.port, k === 'probe (raised)');
              if (k === 'probe (raised)') raised &&= f.raised;
              got[k]!.push(f);
            }
          }
          loads.push(loadavg()[0]!);
        }
      } finally {
        for (const h of hogProcs) h.kill();
      }
      const w = { p50: median(got['wrk']!.map((f) => f.p50)), p95: median(got['wrk']!.map((f) => f.p95)) };
      console.log(`\n${hogs} busy process(es) on ${cpus().length} cores; load average ${median(loads).toFixed(1)}${raised ? '' : '; NOTE: raising the priority was not allowed here, so both probe rows ran at normal priority'}`);
      console.log('client            p50 ms   p95 ms   p50 ÷ wrk   p95 ÷ wrk   (medians of the rounds)');
      for (const k of kinds) {
        const p50 = median(got[k]!.map((f) => f.p50));
        const p95 = median(got[k]!.map((f) => f.p95));
        console.log(`${k.padEnd(16)}  ${p50.toFixed(1).padStart(6)}   ${p95.toFixed(1).padStart(6)}   ${(p50 / w.p50).toFixed(2).padStart(9)}   ${(p95 / w.p95).toFixed(2).padStart(9)}`);
      }
    }
  } finally {
    server.stop();
  }
}

await main();
