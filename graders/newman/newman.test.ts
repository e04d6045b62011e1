import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LABEL } from '../../runner/sandbox/labels.js';
import { runInToolbox, sweepToolboxes, TOOLBOX_COMPONENT } from '../../runner/sandbox/docker-toolbox.js';
import { newVerifySession } from '../../runner/grading/verify.js';
import { hasEngine } from '../../test/helpers/docker-env.js';
import { requireImage } from '../../test/helpers/images.js';
import { tempSeat, type TempSeat } from '../__helpers__/temp-seat.js';
import { Deadline, runProbe, type ProbeOutcome, type SeatHandle, type TrustedRun } from '../probe.js';
import { catchesRun, classify, graderSource, liveAssertions, newmanProbe, ObservationsSchema, parseDriverOutput, passesRun, variantsAssertions, type NewmanRun, type Observations } from './newman.js';
import { BODY_MUTANTS, NewmanParamsSchema, STATUS_MUTANTS } from './params.js';

const PATHS = { health: '/health', answer: '/v1/answer' };
const fixture = async (name: string): Promise<NewmanRun[]> => {
  const o = ObservationsSchema.parse(JSON.parse(await readFile(new URL(`./fixtures/${name}.json`, import.meta.url), 'utf8')));
  if (!('runs' in o)) throw new Error(`${name}: no runs`);
  return o.runs;
};
const failedIds = (as: { id: string; ok: boolean }[]): string[] => as.filter((a) => !a.ok).map((a) => a.id);

// Fixtures: the driver's observations of real newman 6.2.2 runs (the task's reference collection,
// its status-only and always-true tampers, its collection-level-auth alternative) against
// servers.py, trimmed to what the probe reads.
describe('live: the collection against the seat’s service', () => {
  it('passes the reference collection: answered, asserted, all passing, the contract covered', async () => {
    const [run] = await fixture('reference-live');
    expect(failedIds(liveAssertions(run!, PATHS))).toEqual([]);
  });
  it('sees the token the auth helper sends (collection-level bearer auth)', async () => {
    const [run] = await fixture('schema-live');
    expect(failedIds(liveAssertions(run!, PATHS))).toEqual([]);
    expect(run!.executions.map((e) => classify(e, PATHS))).toEqual(['health', 'answer', 'unauthorized', 'unauthorized', 'invalid', 'invalid']);
  });
  it('fails requests without assertions, failing assertions, unanswered requests and missing cases', async () => {
    const [run] = await fixture('reference-live');
    const r = run!;
    const bare = { ...r, executions: r.executions.map((e, i) => (i === 0 ? { ...e, assertions: [] } : e)) };
    expect(failedIds(liveAssertions(bare, PATHS))).toEqual(['asserted']);
    const failing = { ...r, failureCount: 1, executions: r.executions.map((e, i) => (i === 1 ? { ...e, assertions: [{ ...e.assertions[0]!, passed: false, error: 'expected 500 to equal 200' }] } : e)) };
    expect(failedIds(liveAssertions(failing, PATHS))).toEqual(['assertions-pass']);
    const scriptError = { ...r, failureCount: 1, failures: [{ source: 'answer', name: 'TypeError', message: 'x is undefined' }] };
    expect(failedIds(liveAssertions(scriptError, PATHS))).toEqual(['assertions-pass']);
    const unanswered = { ...r, executions: r.executions.map((e, i) => (i === 0 ? { ...e, code: null, requestError: 'ECONNREFUSED' } : e)) };
    expect(failedIds(liveAssertions(unanswered, PATHS))).toEqual(['responses', 'covers:health']);
    const noAuthCase = { ...r, executions: r.executions.filter((e) => e.code !== 401) };
    expect(failedIds(liveAssertions(noAuthCase, PATHS))).toEqual(['covers:unauthorized']);
    // A 401 answered to the right token is not an auth-failure test; a 200 to a wrong token is no answer test.
    const rightTokenOnly = { ...r, executions: r.executions.map((e) => (e.code === 401 ? { ...e, auth: 'right' as const } : e.code === 200 && e.method === 'POST' ? { ...e, auth: 'wrong' as const } : e)) };
    expect(failedIds(liveAssertions(rightTokenOnly, PATHS))).toEqual(['covers:answer', 'covers:unauthorized']);
    expect(failedIds(liveAssertions({ ...r, error: 'collection could not be loaded', executions: [] }, PATHS))).toEqual(['runs']);
  });
  it('passes an always-true collection live, which catches no mutant (so live, depending on status-variants, is withheld)', async () => {
    const [run] = await fixture('always-pass-live');
    expect(failedIds(liveAssertions(run!, PATHS))).toEqual([]);
    const runs = await fixture('always-pass-variants');
    expect(failedIds(variantsAssertions(runs, STATUS_MUTANTS, 2))).toEqual(STATUS_MUTANTS.map((m) => `caught:${m}`));
  });
});

describe('variants: mutation testing against the grader’s servers', () => {
  it('passes the reference collection: control passes, every mutant caught, both rounds', async () => {
    const runs = await fixture('reference-variants');
    expect(failedIds(variantsAssertions(runs, STATUS_MUTANTS, 2))).toEqual([]);
    expect(failedIds(variantsAssertions(runs, BODY_MUTANTS, 2))).toEqual([]);
  });
  it('a status-only collection catches the status mutants and none of the body mutants', async () => {
    const runs = await fixture('status-only-variants');
    expect(failedIds(variantsAssertions(runs, STATUS_MUTANTS, 2))).toEqual([]);
    expect(failedIds(variantsAssertions(runs, BODY_MUTANTS, 2))).toEqual(BODY_MUTANTS.map((m) => `caught:${m}`));
  });
  it('counts no catch when control fails (failing everywhere catches everything for free)', async () => {
    const runs = await fixture('reference-variants');
    const broken = runs.map((r) => (r.variant === 'control' ? { ...r, failureCount: 1 } : r));
    expect(failedIds(variantsAssertions(broken, STATUS_MUTANTS, 2))).toEqual(['control', ...STATUS_MUTANTS.map((m) => `caught:${m}`)]);
  });
  it('wants the same verdict in every round: a catch by chance in one round does not count', async () => {
    const runs = await fixture('reference-variants');
    const once = runs.map((r) => (r.variant === 'wrong-model' && r.run === 2 ? { ...r, failureCount: 0, executions: r.executions.map((e) => ({ ...e, assertions: e.assertions.map((a) => ({ ...a, passed: true, error: null })) })) } : r));
    expect(failedIds(variantsAssertions(once, BODY_MUTANTS, 2))).toEqual(['caught:wrong-model']);
    expect(failedIds(variantsAssertions(runs.filter((r) => r.run === 1), BODY_MUTANTS, 2))).toEqual(['control', ...BODY_MUTANTS.map((m) => `caught:${m}`)]);
  });
  it('tells a pass from a catch', async () => {
    const runs = await fixture('reference-variants');
    const control = runs.find((r) => r.variant === 'control')!;
    expect(passesRun(control)).toBe(true);
    expect(catchesRun(control)).toBe(false);
    expect(catchesRun({ ...control, error: 'callback timed out' })).toBe(true);
    expect(passesRun({ ...control, executions: [] })).toBe(false);
  });
});

describe('the driver’s output', () => {
  const obs: Observations = { collectionError: 'Unexpected token' };
  it('is the line with this run’s marker, nothing a script could print', () => {
    const marker = '@@newman-abc@@';
    const forged = JSON.stringify({ mode: 'variants', runs: [] });
    expect(parseDriverOutput(`${forged}\n@@newman-xyz@@${forged}\n`, marker)).toBeNull();
    expect(parseDriverOutput(`noise\n${marker}${JSON.stringify(obs)}\n`, marker)).toEqual(obs);
    expect(parseDriverOutput(`${marker}{"mode":"live"}\n`, marker)).toBeNull();
  });
  it('comes from the grader’s own files', () => {
    expect(graderSource('driver.cjs')).toContain("reporters: []");
    expect(graderSource('servers.py')).toContain('STATUS_MUTANTS');
  });
});

describe('params', () => {
  it('takes exactly one aspect, and mutants servers.py knows', () => {
    const base = { kind: 'newman', collection: '/workspace/apitest/collection.json', token: '/opt/exam/apitest/private/token' };
    expect(NewmanParamsSchema.safeParse({ ...base, live: {} }).success).toBe(true);
    expect(NewmanParamsSchema.safeParse({ ...base }).success).toBe(false);
    expect(NewmanParamsSchema.safeParse({ ...base, live: {}, variants: { mutants: ['wrong-model'] } }).success).toBe(false);
    expect(NewmanParamsSchema.safeParse({ ...base, variants: { mutants: ['made-up'] } }).success).toBe(false);
    for (const m of [...STATUS_MUTANTS, ...BODY_MUTANTS]) expect(graderSource('servers.py')).toContain(`"${m}"`);
  });
});

// ---------------------------------------------------------------------------------------------
// The probe in the real toolbox: newman from the image's GRADER_NODE_MODULES, servers.py beside it,
// the live service a servers.py control in a container whose network namespace the run joins (as
// `network: 'seat'` joins the seat's).

const docker = new Docker();
const SESSION = newVerifySession();
const REFERENCE = new URL('../../tasks/junior/apitest/solution/solve.sh', import.meta.url);

/** The reference collection, as the solution writes it. */
async function referenceCollection(): Promise<string> {
  const sh = await readFile(REFERENCE, 'utf8');
  const m = /<<'JSON'\n([\s\S]*?)\nJSON\n/.exec(sh);
  if (!m) throw new Error('no collection in solve.sh');
  return m[1]!;
}

describe.skipIf(!hasEngine)('the probe with the real toolbox', () => {
  let image: string;
  let seat: TempSeat;
  let live: Docker.Container | undefined;
  const TOKEN = 'a'.repeat(8) + 'tok3n' + 'b'.repeat(19);
  const labels = { [LABEL.session]: SESSION, [LABEL.seat]: 'seat-newman', [LABEL.task]: 'newman-test', [LABEL.component]: TOOLBOX_COMPONENT };
  const box = (): NonNullable<SeatHandle['runTrusted']> => async ({ copy, put, cmd, timeoutMs, network }): Promise<TrustedRun> => {
    const files = [];
    for (const c of copy) {
      const f = await seat.readFile(c.from);
      if (!f) throw new Error(`missing ${c.from}`);
      files.push({ path: c.to, content: f.data, mode: 0o644, uid: 0, gid: 0 });
    }
    for (const p of put ?? []) files.push({ path: p.path, content: p.content, mode: p.mode ?? 0o644, uid: 0, gid: 0 });
    return runInToolbox({ docker, image }, labels, files, { cmd, timeoutMs, ...(network === 'seat' ? { networkMode: `container:${live!.id}` } : {}) });
  };
  const run = (extra: object): Promise<ProbeOutcome> =>
    runProbe(newmanProbe, seat, { kind: 'newman', collection: '/workspace/apitest/collection.json', token: '/opt/private/token', ...extra }, Deadline.after(240_000));
  const put = async (path: string, text: string): Promise<void> => {
    await mkdir(dirname(join(seat.root, path)), { recursive: true });
    await writeFile(join(seat.root, path), text);
  };

  beforeAll(async () => {
    image = await requireImage('toolbox');
    seat = await tempSeat('seat-newman');
    Object.assign(seat, { runTrusted: box() });
    await put('/opt/private/token', TOKEN + '\n');
    live = await docker.createContainer({ Image: image, Cmd: ['sleep', 'infinity'], Labels: labels, HostConfig: { NetworkMode: 'none', Init: true } });
    await live.start();
    const exec = await live.exec({ Cmd: ['sh', '-c', `printf '%s' '${graderSource('servers.py').replaceAll("'", "'\\''")}' > /tmp/s.py && (python3 /tmp/s.py control 8000 ${TOKEN} >/dev/null 2>&1 &) && sleep 1`] });
    await exec.start({ hijack: true, stdin: false }).then((s) => new Promise((r) => (s.on('end', r), s.on('close', r), s.resume())));
  }, 120_000);
  afterAll(async () => {
    await live?.remove({ force: true }).catch(() => undefined);
    await seat?.cleanup();
    await sweepToolboxes(docker, { session: SESSION });
  });

  it('passes the reference collection live and against every mutant', async () => {
    await put('/workspace/apitest/collection.json', await referenceCollection());
    const l = await run({ live: {} });
    expect(l.status, JSON.stringify(l.summary)).toBe('pass');
    const v = await run({ variants: { mutants: [...STATUS_MUTANTS, ...BODY_MUTANTS] } });
    expect(v.status, JSON.stringify(v.summary)).toBe('pass');
  }, 240_000);

  it('fails a collection that asserts nothing, and ignores a line a script prints to look like the driver’s', async () => {
    const c = JSON.parse(await referenceCollection()) as { item: { event?: unknown[] }[] };
    const forged = JSON.stringify({ mode: 'variants', runs: [] });
    for (const item of c.item) item.event = [{ listen: 'test', script: { exec: [`console.log(${JSON.stringify(forged)}); pm.test('fine', () => pm.expect(1).to.equal(1));`] } }];
    await put('/workspace/apitest/collection.json', JSON.stringify(c));
    const v = await run({ variants: { mutants: ['wrong-model', 'forbidden-for-401'] } });
    expect(v.status).toBe('fail');
    expect(JSON.stringify(v.evidence)).toContain('passed, not caught');
  }, 240_000);

  it('fails a file that is not JSON, and is an error without the grader’s token', async () => {
    await put('/workspace/apitest/collection.json', '{ not json');
    expect((await run({ live: {} })).status).toBe('fail');
    await put('/workspace/apitest/collection.json', await referenceCollection());
    const o = await run({ live: {}, token: '/opt/private/none' });
    expect(o.status).toBe('error');
    expect(o.error?.code).toBe('NEWMAN_GRADER_FILES');
  }, 240_000);
});

describe('the probe without a working toolbox', () => {
  it('is an error, not a fail, when the driver gives no reading', async () => {
    const seat = await tempSeat();
    try {
      await mkdir(join(seat.root, 'workspace/apitest'), { recursive: true });
      await writeFile(join(seat.root, 'workspace/apitest/collection.json'), '{}');
      const broken = { ...seat, runTrusted: async (): Promise<TrustedRun> => ({ exitCode: 2, stdout: '', stderr: 'driver failed', timedOut: false, durationMs: 1, where: 'x' }) };
      const o = await runProbe(newmanProbe, broken, { kind: 'newman', collection: '/workspace/apitest/collection.json', token: '/opt/private/token', variants: { mutants: ['wrong-model'] } }, Deadline.after(10_000));
      expect(o.status).toBe('error');
      expect(o.error?.code).toBe('NEWMAN_RUN_FAILED');
      const none = await runProbe(newmanProbe, seat, { kind: 'newman', collection: '/workspace/apitest/missing.json', token: '/opt/private/token', live: {} }, Deadline.after(10_000));
      expect(none.status).toBe('fail');
    } finally {
      await seat.cleanup();
    }
  });
});
