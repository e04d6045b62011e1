/**
 * Provision and destroy N seats in parallel (N = 1, 10, 30) with the Docker driver, and the same
 * count of raw `docker run -d` / `docker rm -f` of the same image in the same run, for the ratio.
 * Two raw baselines:
 *   - plain: `docker run -d IMAGE` on the default bridge, as a person would type it;
 *   - isolated: the same engine work a seat needs and nothing of the harness: an internal network
 *     with inter-container traffic off, created and removed in the round, and `docker run` with
 *     the seat's limits (init, memory without swap, pids, cpus, capabilities) on it.
 * plain vs isolated is what isolation costs in the engine; isolated vs harness is the harness.
 * Usage: npm run bench:sandbox [-- --counts 1,10,30 --rounds 3]
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { seatImage } from '../test/conformance/seat-image.js';
import { DockerDriver, SEAT_CAPABILITIES } from '../runner/sandbox/docker-driver.js';
import { parseSeatPlan } from '../runner/sandbox/driver.js';

const run = promisify(execFile);

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const v = await fn();
  return [performance.now() - t0, v];
}

/** The seat's limits as `docker run` flags (plan defaults: see SeatPlan's resources). */
function seatFlags(): string[] {
  const r = parseSeatPlan({ session: 'x', seat: 'x', task: 'x', workspace: { image: 'x' } }).resources;
  return [
    '--init', '--cpus', String(r.cpus), '--memory', `${r.memoryMiB}m`, '--memory-swap', `${r.memoryMiB}m`, '--pids-limit', String(r.pids),
    '--cap-drop', 'ALL', ...SEAT_CAPABILITIES.flatMap((c) => ['--cap-add', c]),
  ];
}

async function rawRound(image: string, n: number, tag: string, isolated: boolean): Promise<{ up: number; down: number }> {
  const ids: string[] = [];
  const net = `dl-bench-${tag}-${randomBytes(2).toString('hex')}`;
  const label = ['--label', 'deploylab.component=bench', '--label', `deploylab.bench=${tag}`];
  const [up] = await timed(async () => {
    if (isolated) await run('docker', ['network', 'create', '--internal', '-o', 'com.docker.network.bridge.enable_icc=false', ...label, net]);
    await Promise.all(
      Array.from({ length: n }, async () => {
        const flags = isolated ? ['--network', net, ...seatFlags()] : [];
        const { stdout } = await run('docker', ['run', '-d', ...label, ...flags, image, 'sleep', 'infinity']);
        ids.push(stdout.trim());
      }),
    );
  });
  const [down] = await timed(async () => {
    await Promise.all(ids.map((id) => run('docker', ['rm', '-f', id])));
    if (isolated) await run('docker', ['network', 'rm', net]);
  });
  return { up, down };
}

async function harnessRound(driver: DockerDriver, image: string, n: number): Promise<{ up: number; down: number; ready: number[] }> {
  const session = `bench-${randomBytes(3).toString('hex')}`;
  const ready: number[] = [];
  const provisioned: number[] = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const ref = { session, seat: `s${i}` };
      await driver.provision(parseSeatPlan({ session, seat: ref.seat, task: 'bench', workspace: { image } }));
      // Comparable with `docker run -d` returning: containers created and started.
      provisioned.push(performance.now() - t0);
      // Ready = the candidate can run a command in the workspace (raw `docker run` proves no such thing).
      const r = await driver.exec(ref, { cmd: ['true'] });
      if (r.exitCode !== 0) throw new Error(`seat ${ref.seat} not ready`);
      ready.push(performance.now() - t0);
    }),
  );
  const up = Math.max(...provisioned);
  const [down] = await timed(() => Promise.all(Array.from({ length: n }, (_, i) => driver.destroy({ session, seat: `s${i}` }))));
  return { up, down, ready };
}

async function main(): Promise<void> {
  const counts = arg('counts', '1,10,30').split(',').map(Number);
  const rounds = Number(arg('rounds', '3'));
  const image = await seatImage();
  const driver = new DockerDriver();
  const tag = randomBytes(3).toString('hex');
  console.log(`image ${image}; ${rounds} round(s) per count; times in ms (median over rounds); ratios = harness ÷ raw`);
  console.log('N    plain-up  iso-up  dl-up  up/plain  up/iso  plain-down  iso-down  dl-down  total/plain  total/iso  ready-median(1st exec)');
  try {
    // One warm-up of each so none pays first-use costs.
    await rawRound(image, 1, tag, false);
    await rawRound(image, 1, tag, true);
    await harnessRound(driver, image, 1);
    for (const n of counts) {
      const plain: { up: number; down: number }[] = [];
      const iso: { up: number; down: number }[] = [];
      const dl: { up: number; down: number; ready: number[] }[] = [];
      for (let r = 0; r < rounds; r++) {
        // Rotate the order so drift (page cache, other load) hits every side alike.
        const steps = [
          async () => plain.push(await rawRound(image, n, tag, false)),
          async () => iso.push(await rawRound(image, n, tag, true)),
          async () => dl.push(await harnessRound(driver, image, n)),
        ];
        for (let k = 0; k < steps.length; k++) await steps[(k + r) % steps.length]!();
      }
      const m = (xs: { up: number; down: number }[], k: 'up' | 'down'): number => median(xs.map((x) => x[k]));
      const [pu, pd, iu, id, du, dd] = [m(plain, 'up'), m(plain, 'down'), m(iso, 'up'), m(iso, 'down'), m(dl, 'up'), m(dl, 'down')];
      const ready = median(dl.flatMap((x) => x.ready));
      const f = (x: number, w: number): string => x.toFixed(0).padStart(w);
      const q = (x: number, w: number): string => x.toFixed(2).padStart(w);
      console.log(
        [String(n).padEnd(4), f(pu, 8), f(iu, 7), f(du, 6), q(du / pu, 9), q(du / iu, 7), f(pd, 11), f(id, 9), f(dd, 8),
          q((du + dd) / (pu + pd), 12), q((du + dd) / (iu + id), 10), f(ready, 13)].join(' '),
      );
    }
  } finally {
    const { stdout } = await run('docker', ['ps', '-aq', '--filter', `label=deploylab.bench=${tag}`]);
    const left = stdout.split('\n').filter(Boolean);
    if (left.length) await run('docker', ['rm', '-f', ...left]);
    const nets = (await run('docker', ['network', 'ls', '-q', '--filter', `label=deploylab.bench=${tag}`])).stdout.split('\n').filter(Boolean);
    if (nets.length) await run('docker', ['network', 'rm', ...nets]);
  }
}

await main();
