/**
 * `newman` probe: the candidate's Postman collection, judged by running it with the grader's own
 * newman (the library, in the trusted toolbox) and reading newman's run summary, never the
 * candidate's output. Two aspects: `live`, the collection against the seat's live service with
 * the grader's environment (it runs, everything it asserts holds, its requests cover the
 * contract); `variants`, mutation testing against the grader's own servers (servers.py, no
 * network, the same port, a fresh token per run): it must pass against the server that keeps the
 * contract and fail against every mutant that breaks one thing of it, round after round, so a
 * collection that asserts nothing, always passes, always fails or fails at random earns nothing.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { DeploylabError } from '../../runner/core/errors.js';
import { capability } from '../capabilities.js';
import { judge, type Assertion } from '../shared/assertions.js';
import { clip, defineProbe, EVIDENCE_LIMITS, failed, note, type Deadline, type Evidence, type ProbeOutcome, type SeatHandle } from '../probe.js';
import { NewmanParamsSchema, portOf, type NewmanParams } from './params.js';

const own = (name: string): string => fileURLToPath(new URL(`./${name}`, import.meta.url));
const sources = new Map<string, string>();
/** The grader's own files from this folder (never from the seat). */
export function graderSource(name: 'driver.cjs' | 'servers.py'): string {
  let s = sources.get(name);
  if (s === undefined) {
    s = readFileSync(own(name), 'utf8');
    sources.set(name, s);
  }
  return s;
}

const Text = z.string();
const ExecutionSchema = z.object({
  name: Text,
  method: z.string().nullable(),
  path: z.string().nullable(),
  auth: z.enum(['right', 'wrong', 'none']),
  code: z.number().int().nullable(),
  requestError: Text.nullable(),
  assertions: z.array(z.object({ name: Text, passed: z.boolean(), skipped: z.boolean(), error: Text.nullable() })),
});
export type Execution = z.infer<typeof ExecutionSchema>;
const RunSchema = z.object({
  variant: z.string(),
  run: z.number().int(),
  error: Text.nullable(),
  executions: z.array(ExecutionSchema),
  executionsOmitted: z.number().int().nonnegative(),
  failures: z.array(z.object({ source: Text, name: Text, message: Text })),
  failureCount: z.number().int().nonnegative(),
  durationMs: z.number().nonnegative(),
});
export type NewmanRun = z.infer<typeof RunSchema>;
export const ObservationsSchema = z.union([
  z.object({ collectionError: Text }),
  z.object({ mode: z.enum(['live', 'variants']), runs: z.array(RunSchema) }),
]);
export type Observations = z.infer<typeof ObservationsSchema>;

function runFailed(message: { zh: string; en: string }, details: Record<string, unknown>): DeploylabError {
  return new DeploylabError({ code: 'NEWMAN_RUN_FAILED', fault: 'infrastructure', message, details });
}

/** The driver's line: the first that starts with this run's marker (a collection cannot know it). */
export function parseDriverOutput(stdout: string, marker: string): Observations | null {
  const line = stdout.split('\n').find((l) => l.startsWith(marker));
  if (line === undefined) return null;
  try {
    const r = ObservationsSchema.safeParse(JSON.parse(line.slice(marker.length)));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Judging a run (pure)

/** How a run went, in short: the facts every aspect starts from. */
export function runFacts(r: NewmanRun): { ran: boolean; responded: boolean; asserted: boolean; failedAssertions: number; clean: boolean } {
  const ex = r.executions;
  const ran = r.error === null && ex.length > 0;
  const responded = ex.every((e) => e.requestError === null && e.code !== null);
  const asserted = ex.every((e) => e.assertions.some((a) => !a.skipped));
  const failedAssertions = ex.reduce((n, e) => n + e.assertions.filter((a) => !a.passed && !a.skipped).length, 0);
  // newman counts script errors and failed assertions alike in its failures.
  const clean = failedAssertions === 0 && r.failureCount === 0;
  return { ran, responded, asserted, failedAssertions, clean };
}

/** Passes against a server: it ran, every request answered and asserted on, nothing failed. */
export function passesRun(r: NewmanRun): boolean {
  const f = runFacts(r);
  return f.ran && f.responded && f.asserted && f.clean;
}

/** Fails against a server: the run broke, a request errored, an assertion or script failed. */
export function catchesRun(r: NewmanRun): boolean {
  const f = runFacts(r);
  return r.error !== null || !f.responded || !f.clean;
}

const describeRun = (r: NewmanRun): string => {
  const f = runFacts(r);
  if (r.error !== null) return `run failed: ${r.error}`;
  const asserts = r.executions.reduce((n, e) => n + e.assertions.length, 0);
  return `${r.executions.length} request(s), ${asserts} assertion(s), ${f.failedAssertions} failed, ${r.failureCount} failure(s)${f.responded ? '' : ', a request got no response'}${f.asserted ? '' : ', a request without assertions'}`;
};

export type Classified = 'health' | 'answer' | 'unauthorized' | 'invalid';

/** What a request tested, by what was sent and what came back. */
export function classify(e: Execution, paths: { health: string; answer: string }): Classified | null {
  if (e.method === 'GET' && e.path === paths.health && e.code === 200) return 'health';
  if (e.method !== 'POST' || e.path !== paths.answer) return null;
  if (e.auth === 'right' && e.code === 200) return 'answer';
  if (e.auth !== 'right' && e.code === 401) return 'unauthorized';
  if (e.auth === 'right' && e.code === 422) return 'invalid';
  return null;
}

const COVERAGE: { id: Classified; expected: string }[] = [
  { id: 'health', expected: 'a GET of the health path answered 200' },
  { id: 'answer', expected: 'a POST of the answer path with the environment token answered 200' },
  { id: 'unauthorized', expected: 'a POST of the answer path with a wrong or no token answered 401' },
  { id: 'invalid', expected: 'a POST of the answer path with the environment token and an invalid body answered 422' },
];

export function liveAssertions(r: NewmanRun, paths: { health: string; answer: string }): Assertion[] {
  const f = runFacts(r);
  const as: Assertion[] = [
    { id: 'runs', ok: f.ran, expected: 'newman runs the collection (at least one request)', actual: r.error ?? `${r.executions.length} request(s)` },
  ];
  if (!f.ran) return as;
  const unanswered = r.executions.filter((e) => e.requestError !== null || e.code === null).map((e) => `${e.name}: ${e.requestError ?? 'no response'}`);
  as.push({ id: 'responses', ok: unanswered.length === 0, expected: 'every request answered', actual: unanswered.length === 0 ? 'yes' : unanswered.slice(0, 3).join('; ') });
  const bare = r.executions.filter((e) => !e.assertions.some((a) => !a.skipped)).map((e) => e.name);
  as.push({ id: 'asserted', ok: bare.length === 0, expected: 'at least one assertion (pm.test) on every request', actual: bare.length === 0 ? 'yes' : `none on ${bare.slice(0, 5).join(', ')}` });
  const failing = r.executions.flatMap((e) => e.assertions.filter((a) => !a.passed && !a.skipped).map((a) => `${e.name}: ${a.name}${a.error ? ` (${a.error})` : ''}`));
  as.push({
    id: 'assertions-pass',
    ok: f.clean,
    expected: 'every assertion holds, no script error',
    actual: f.clean ? 'yes' : [...failing, ...r.failures.filter((x) => x.name !== 'AssertionError').map((x) => `${x.source}: ${x.name} ${x.message}`)].slice(0, 4).join('; ') || `${r.failureCount} failure(s)`,
  });
  const seen = new Map<Classified, string[]>();
  for (const e of r.executions) {
    const c = classify(e, paths);
    if (c) seen.set(c, [...(seen.get(c) ?? []), e.name]);
  }
  for (const c of COVERAGE) {
    const names = seen.get(c.id) ?? [];
    as.push({ id: `covers:${c.id}`, ok: names.length > 0, expected: c.expected, actual: names.length > 0 ? names.slice(0, 3).join(', ') : 'no such request' });
  }
  return as;
}

/** Control passed and each mutant was caught, in every round. */
export function variantsAssertions(runs: NewmanRun[], mutants: readonly string[], rounds: number): Assertion[] {
  const of = (v: string): NewmanRun[] => runs.filter((r) => r.variant === v).sort((a, b) => a.run - b.run);
  const control = of('control');
  const controlOk = control.length === rounds && control.every(passesRun);
  const as: Assertion[] = [
    {
      id: 'control',
      ok: controlOk,
      expected: `passes against the server that keeps the contract, in each of ${rounds} round(s) (every request answered and asserted on, nothing failing)`,
      actual: control.length === 0 ? 'not run' : control.map((r) => `round ${r.run}: ${passesRun(r) ? 'passed' : describeRun(r)}`).join('; '),
    },
  ];
  for (const m of mutants) {
    const rs = of(m);
    as.push({
      id: `caught:${m}`,
      // A collection that fails against the contract catches mutants for free: only a pass on control makes a catch count.
      ok: controlOk && rs.length === rounds && rs.every(catchesRun),
      expected: `fails against mutant ${m} in each of ${rounds} round(s)`,
      actual: rs.length === 0 ? 'not run' : rs.map((r) => `round ${r.run}: ${catchesRun(r) ? `caught (${describeRun(r)})` : 'passed, not caught'}`).join('; '),
    });
  }
  return as;
}

// ---------------------------------------------------------------------------------------------

const COLLECTION_IN_TOOLBOX = '/work/collection.json';
const DRIVER = '/work/grader/driver.cjs';
const SERVERS = '/work/grader/servers.py';
const CONFIG = '/work/grader/config.json';

async function graderToken(seat: SeatHandle, p: NewmanParams): Promise<string> {
  const f = await seat.readFile(p.token, { container: p.container, maxBytes: 4096 });
  const token = f?.data.toString('utf8').trim() ?? '';
  if (!/^[\x21-\x7e]{8,256}$/.test(token)) {
    throw new DeploylabError({
      code: 'NEWMAN_GRADER_FILES',
      fault: 'config',
      message: { zh: `评分方的令牌副本缺失或无效：${p.token}`, en: `the grader's copy of the token is missing or invalid: ${p.token}` },
      details: { path: p.token, present: f !== null },
    });
  }
  return token;
}

/** Run the driver in the toolbox once: the live service (seat network) or the grader's variants (no network). */
async function drive(seat: SeatHandle, p: NewmanParams, deadline: Deadline): Promise<{ obs: Observations; evidence: Evidence[] }> {
  const marker = `@@newman-${randomBytes(16).toString('hex')}@@`;
  const live = p.live !== undefined;
  const variants = p.variants ? ['control', ...p.variants.mutants] : [];
  const cfg = {
    collection: COLLECTION_IN_TOOLBOX,
    mode: live ? 'live' : 'variants',
    baseUrl: p.baseUrl,
    port: portOf(p.baseUrl),
    servers: SERVERS,
    variants,
    rounds: p.variants?.rounds ?? 1,
    requestTimeoutMs: p.requestTimeoutMs,
    // Each run's share of the check's time (a server start and a margin aside), so a collection that loops cannot outlast the check.
    runTimeoutMs: Math.max(5_000, Math.floor((p.timeoutMs - 15_000) / Math.max(1, variants.length * (p.variants?.rounds ?? 1))) - 1_000),
  };
  const token = live ? await graderToken(seat, p) : undefined;
  const run = await capability(seat, 'toolbox')({
    copy: [{ from: p.collection, to: COLLECTION_IN_TOOLBOX, container: p.container }],
    put: [
      { path: DRIVER, content: graderSource('driver.cjs'), mode: 0o644 },
      { path: SERVERS, content: graderSource('servers.py'), mode: 0o644 },
      { path: CONFIG, content: JSON.stringify({ ...cfg, marker, ...(token ? { token } : {}) }), mode: 0o600 },
    ],
    cmd: ['node', DRIVER, CONFIG],
    timeoutMs: Math.max(1_000, Math.min(p.timeoutMs, deadline.remainingMs() - 2_000)),
    network: live ? 'seat' : 'none',
  });
  if (run.timedOut) deadline.check();
  const stdout = run.stdout.split('\n').filter((l) => !l.startsWith(marker)).join('\n');
  const evidence: Evidence[] = [
    {
      kind: 'command',
      argv: ['node', 'driver.cjs (the grader’s own)', JSON.stringify({ ...cfg, collection: p.collection })],
      where: run.where,
      exitCode: run.exitCode,
      stdout: clip(stdout),
      stderr: clip(run.stderr.slice(-EVIDENCE_LIMITS.text)),
      durationMs: run.durationMs,
    },
  ];
  const obs = run.exitCode === 0 ? parseDriverOutput(run.stdout, marker) : null;
  if (!obs) {
    throw runFailed(
      { zh: `评分方的 newman 运行没有给出结果（退出码 ${run.exitCode}）`, en: `the grader's newman run gave no reading (exit ${run.exitCode})` },
      { timedOut: run.timedOut, stderr: run.stderr.slice(-2000), stdout: stdout.slice(-500) },
    );
  }
  return { obs, evidence };
}

/** The runs, trimmed for the record: each request's method, path, token use, status and assertions. */
function runsNote(obs: Observations & { runs: NewmanRun[] }): Evidence {
  const runs = obs.runs.map((r) => ({
    variant: r.variant,
    round: r.run,
    error: r.error,
    failureCount: r.failureCount,
    durationMs: r.durationMs,
    requests: r.executions.slice(0, 20).map((e) => ({ name: e.name, method: e.method, path: e.path, token: e.auth, status: e.code, requestError: e.requestError, assertions: e.assertions.slice(0, 10).map((a) => `${a.passed ? '✓' : '✗'} ${a.name}`) })),
  }));
  return note('评分方 newman 运行的摘要（取自 newman 的运行结果）', "the grader's newman runs, from newman's run summary", { runs });
}

export const newmanProbe = defineProbe({
  kind: 'newman',
  params: NewmanParamsSchema,
  async run(seat: SeatHandle, p: NewmanParams, deadline: Deadline): Promise<ProbeOutcome> {
    const f = await seat.readFile(p.collection, { container: p.container, maxBytes: p.maxBytes });
    if (!f) return failed({ zh: `没有测试集合文件：${p.collection}`, en: `no collection file: ${p.collection}` }, [{ kind: 'file', path: p.collection, exists: false }]);
    if (f.truncated) return failed({ zh: `测试集合文件超过 ${p.maxBytes} 字节`, en: `the collection is over ${p.maxBytes} bytes` }, [{ kind: 'file', path: p.collection, exists: true, size: f.size }]);
    const { obs, evidence } = await drive(seat, p, deadline);
    if ('collectionError' in obs) {
      return failed({ zh: `测试集合不是有效的 JSON：${obs.collectionError}`, en: `the collection is not valid JSON: ${obs.collectionError}` }, [...evidence, { kind: 'file', path: p.collection, exists: true, size: f.size, excerpt: clip(f.data.toString('utf8'), 2000) }]);
    }
    evidence.push(runsNote(obs));
    if (p.live) {
      const r = obs.runs[0];
      if (!r) throw runFailed({ zh: '评分方的 newman 运行缺少结果', en: "the grader's newman run is missing its result" }, {});
      return judge(liveAssertions(r, p.live), 'all', { zh: `测试集合对考位在线服务的运行 ${p.collection}`, en: `collection ${p.collection} against the seat's live service` }, evidence);
    }
    const v = p.variants!;
    return judge(variantsAssertions(obs.runs, v.mutants, v.rounds), 'all', { zh: `测试集合对评分方服务及其变异体的运行 ${p.collection}`, en: `collection ${p.collection} against the grader's server and its mutants` }, evidence);
  },
});
