/**
 * Provision and destroy N seats in parallel (N = 1, 10, 30) with the Docker driver, and the same
 * count of raw `docker run -d` / `docker rm -f` of the same image in the same run, for the ratio.
 * Usage: npm run bench:sandbox [-- --counts 1,10,30 --rounds 3]
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { seatImage } from '../test/conformance/seat-image.js';
import { DockerDriver } from '../runner/sandbox/docker-driver.js';
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

async function rawRound(image: string, n: number, tag: string): Promise<{ up: number; down: number }> {
  const ids: string[] = [];
  const [up] = await timed(() =>
    Promise.all(
      Array.from({ length: n }, async () => {
        const { stdout } = await run('docker', ['run', '-d', '--label', 'deploylab.component=bench', '--label', `deploylab.bench=${tag}`, image, 'sleep', 'infinity']);
        ids.push(stdout.trim());
      }),
    ),
  );
  const [down] = await timed(() => Promise.all(ids.map((id) => run('docker', ['rm', '-f', id]))));
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
  console.log(`image ${image}; ${rounds} round(s) per count; times in ms (median over rounds)`);
  console.log('N    raw-up  dl-up  up-ratio  raw-down  dl-down  down-ratio  total-ratio  median-ready(1st exec)');
  try {
    // One warm-up of each so neither side pays first-use costs.
    await rawRound(image, 1, tag);
    await harnessRound(driver, image, 1);
    for (const n of counts) {
      const raw: { up: number; down: number }[] = [];
      const dl: { up: number; down: number; ready: number[] }[] = [];
      for (let r = 0; r < rounds; r++) {
        // Alternate the order so drift (page cache, other load) hits both sides alike.
        if (r % 2 === 0) {
          raw.push(await rawRound(image, n, tag));
          dl.push(await harnessRound(driver, image, n));
        } else {
          dl.push(await harnessRound(driver, image, n));
          raw.push(await rawRound(image, n, tag));
        }
      }
      const ru = median(raw.map((x) => x.up));
      const rd = median(raw.map((x) => x.down));
      const du = median(dl.map((x) => x.up));
      const dd = median(dl.map((x) => x.down));
      const ready = median(dl.flatMap((x) => x.ready));
      console.log(
        [String(n).padEnd(4), ru.toFixed(0).padStart(6), du.toFixed(0).padStart(6), (du / ru).toFixed(2).padStart(9),
          rd.toFixed(0).padStart(9), dd.toFixed(0).padStart(8), (dd / rd).toFixed(2).padStart(11),
          ((du + dd) / (ru + rd)).toFixed(2).padStart(12), ready.toFixed(0).padStart(10)].join(' '),
      );
    }
  } finally {
    const { stdout } = await run('docker', ['ps', '-aq', '--filter', `label=deploylab.bench=${tag}`]);
    const left = stdout.split('\n').filter(Boolean);
    if (left.length) await run('docker', ['rm', '-f', ...left]);
  }
}

await main();
