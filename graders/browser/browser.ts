/**
 * `browser` probe: the candidate's web page, opened in the trusted toolbox's own Chromium. The
 * toolbox joins the seat's network namespace (the page and its backend on 127.0.0.1, no
 * capabilities) and runs the grader's driver.cjs, which performs one aspect's steps with values
 * the grader draws for this run and reports what it saw; the judging is here. Identity before
 * behaviour: the page's Vue is the provided build, byte for byte, and the app judged is one its
 * real createApp made. Provenance: each answer the page shows is the answer the browser received
 * for the grader's own request, and the grader asks the model backend the same body itself (the
 * backend samples with a fixed seed, so the same body gives the same text).
 */
import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { DeploylabError } from '../../runner/core/errors.js';
import { capability } from '../capabilities.js';
import { judge, show, type Assertion } from '../shared/assertions.js';
import { clip, defineProbe, EVIDENCE_LIMITS, failed, judgeUnreachable, note, type Deadline, type Evidence, type ProbeOutcome, type SeatHandle } from '../probe.js';
import { BrowserParamsSchema, type BrowserParams } from './params.js';

const DRIVER_PATH = fileURLToPath(new URL('./driver.cjs', import.meta.url));
let driverScript: string | undefined;
/** The grader's driver, from this folder (never from the seat). */
export function driverSource(): string {
  driverScript ??= readFileSync(DRIVER_PATH, 'utf8');
  return driverScript;
}

// ---------------------------------------------------------------------------------------------
// What the driver reports

const Text = z.string().nullable().optional();
const ChatRequest = z.object({
  url: z.string(),
  method: z.string(),
  postData: Text,
  response: z.object({ status: z.number().int(), body: Text }).nullable().optional(),
  failure: Text,
});
const Round = z.object({
  values: z.object({ temperature: z.number(), topP: z.number(), maxTokens: z.number(), prompt: z.string() }),
  actionError: z.string().optional(),
  requests: z.array(ChatRequest).optional(),
  shown: Text,
  error: Text,
  replay: z.object({ status: z.number().int().nullable(), body: Text, error: z.string().optional() }).optional(),
});
const Control = z.object({ found: z.number().int(), tag: z.string().optional(), type: Text, value: Text, text: Text });
const Case = z.object({
  field: z.enum(['temperature', 'topP', 'maxTokens']),
  typed: z.number(),
  shown: Text,
  controlType: Text,
  requests: z.array(ChatRequest.pick({ url: true, method: true, postData: true })).optional(),
  error: Text,
  actionError: z.string().optional(),
});
export const ObservationSchema = z.discriminatedUnion('ok', [
  z.object({
    ok: z.literal(true),
    load: z.object({ ok: z.boolean(), status: z.number().int().nullable(), error: z.string().optional(), rendered: z.boolean().optional() }),
    scripts: z.array(z.object({ url: z.string(), status: z.number().int(), size: z.number().nullable(), sha256: z.string().nullable(), vueVersion: z.string().nullable() })),
    vues: z.array(z.object({ src: z.string(), version: z.string() })).default([]),
    apps: z
      .array(z.object({ src: z.string(), version: z.string(), mounted: z.boolean(), dataVApp: z.boolean(), ownApp: z.boolean(), inside: z.record(z.string(), z.boolean()) }))
      .default([]),
    controls: z.record(z.string(), Control).default({}),
    reactivity: z
      .object({
        app: z.boolean().optional(),
        typedAt: z.string().nullable().optional(),
        promptAt: z.string().nullable().optional(),
        wrote: z.boolean().optional(),
        shownAfterWrite: Text,
        fillError: z.string().optional(),
      })
      .optional(),
    requestsBeforeSend: z.number().int().default(0),
    rounds: z.array(Round).optional(),
    cases: z.array(Case).optional(),
    stepError: z.string().optional(),
  }),
  z.object({ ok: z.literal(false), driverError: z.string() }),
]);
export type Observation = Extract<z.infer<typeof ObservationSchema>, { ok: true }>;
export type RoundValues = z.infer<typeof Round>['values'];
export type ValidationCase = { field: 'temperature' | 'topP' | 'maxTokens'; value: number; prompt: string };

// ---------------------------------------------------------------------------------------------
// The grader's own values, fresh for each run

type Field = BrowserParams['fields']['temperature'];

/** A value with two decimals well inside the field's range, never its default (nor `avoid`). */
export function pickValue(f: Field, avoid: number[] = []): number {
  const span = f.max - f.min;
  const lo = Math.ceil((f.min + span * 0.05) * 100);
  const hi = Math.floor((f.max - span * 0.05) * 100);
  for (;;) {
    const v = randomInt(lo, hi + 1) / 100;
    if (v !== f.default && !avoid.includes(v)) return v;
  }
}

export function nonce(): string {
  return randomBytes(6).toString('hex');
}

export function graderRounds(p: BrowserParams): RoundValues[] {
  const out: RoundValues[] = [];
  for (let i = 0; i < p.rounds; i++) {
    let maxTokens = randomInt(p.roundMaxTokens.min, p.roundMaxTokens.max + 1);
    if (maxTokens === p.fields.maxTokens.default && p.roundMaxTokens.max > p.roundMaxTokens.min) maxTokens = maxTokens === p.roundMaxTokens.max ? maxTokens - 1 : maxTokens + 1;
    out.push({
      temperature: pickValue(p.fields.temperature, out.map((r) => r.temperature)),
      topP: pickValue(p.fields.topP, out.map((r) => r.topP)),
      maxTokens,
      prompt: `panel check ${nonce()}`,
    });
  }
  return out;
}

/** Out-of-range values: above and below temperature's range, above top_p's and max_tokens'. */
export function validationCases(p: BrowserParams): ValidationCase[] {
  const off = (): number => randomInt(1, 100) / 100;
  return [
    { field: 'temperature', value: +(p.fields.temperature.max + off()).toFixed(2), prompt: `panel check ${nonce()}` },
    { field: 'temperature', value: +(p.fields.temperature.min - off()).toFixed(2), prompt: `panel check ${nonce()}` },
    { field: 'topP', value: +(p.fields.topP.max + off()).toFixed(2), prompt: `panel check ${nonce()}` },
    { field: 'maxTokens', value: p.fields.maxTokens.max + randomInt(1, 100), prompt: `panel check ${nonce()}` },
  ];
}

// ---------------------------------------------------------------------------------------------
// Judging (pure: observations in, assertions out)

const ok2xx = (s: number | null | undefined): boolean => typeof s === 'number' && s >= 200 && s < 300;

/** Scripts the page loaded whose bytes are one of the accepted Vue builds. */
function verifiedVueUrls(o: Observation, builds: readonly string[]): Set<string> {
  return new Set(o.scripts.filter((s) => ok2xx(s.status) && s.sha256 !== null && builds.includes(s.sha256)).map((s) => s.url));
}

function stepAssertion(o: Observation): Assertion[] {
  return o.stepError ? [{ id: 'page-steps', ok: false, expected: "the grader's steps run on the page", actual: o.stepError }] : [];
}

export function vueAssertions(o: Observation, builds: readonly string[], written: number): Assertion[] {
  const urls = verifiedVueUrls(o, builds);
  const vueScripts = o.scripts.filter((s) => s.vueVersion !== null);
  const as: Assertion[] = [
    {
      id: 'vue-file',
      ok: urls.size > 0,
      expected: 'a script the page loaded is the provided Vue 3 build, byte for byte (sha256)',
      actual: urls.size > 0 ? [...urls].join(', ') : vueScripts.length > 0 ? `Vue scripts with other bytes: ${vueScripts.map((s) => `${s.url} (${s.sha256?.slice(0, 12) ?? '?'})`).join(', ')}` : 'no Vue build among the scripts loaded',
    },
  ];
  const fromFile = o.vues.filter((v) => urls.has(v.src));
  as.push({
    id: 'vue-global',
    ok: fromFile.some((v) => v.version.startsWith('3.')),
    expected: 'the global Vue 3 object, set by that script',
    actual: o.vues.length === 0 ? 'no global Vue with createApp was set' : o.vues.map((v) => `${v.version} from ${v.src}`).join(', '),
  });
  const app = o.apps.find((a) => urls.has(a.src) && a.mounted && a.ownApp && a.dataVApp && a.inside['send']);
  const anyMounted = o.apps.filter((a) => urls.has(a.src) && a.mounted);
  as.push({
    id: 'app-mounted',
    ok: !!app,
    expected: "an app made by that Vue's createApp, mounted on the element holding the controls",
    actual: o.apps.length === 0 ? 'createApp never called' : anyMounted.length === 0 ? 'no app of it was mounted' : app ? 'yes' : 'the mounted app does not hold the send button',
  });
  const missing = app ? Object.entries(app.inside).filter(([, v]) => !v).map(([k]) => k) : Object.keys(o.controls);
  as.push({ id: 'controls-inside', ok: !!app && missing.length === 0, expected: 'every control inside the mounted app', actual: missing.length === 0 ? 'all inside' : `outside or missing: ${missing.join(', ')}` });
  const r = o.reactivity;
  as.push({
    id: 'input-to-state',
    ok: !!r?.typedAt,
    expected: "the temperature the grader typed is in the app's reactive state",
    actual: r?.fillError ? `could not type: ${r.fillError}` : r?.typedAt ? `at ${r.typedAt}` : 'not found in the state',
  });
  as.push({
    id: 'state-to-input',
    ok: !!r?.wrote && r.shownAfterWrite != null && Number(r.shownAfterWrite) === written,
    expected: `the grader writes ${written} into that state: the input shows it`,
    actual: r?.wrote ? `input shows ${show(r.shownAfterWrite ?? null)}` : 'nothing to write to',
  });
  as.push({ id: 'prompt-in-state', ok: !!r?.promptAt, expected: "the prompt the grader typed is in the app's reactive state", actual: r?.promptAt ? `at ${r.promptAt}` : 'not found in the state' });
  return [...as, ...stepAssertion(o)];
}

export function defaultsAssertions(o: Observation, p: BrowserParams): Assertion[] {
  const as: Assertion[] = [];
  for (const [name, tid] of Object.entries(p.testids) as [keyof BrowserParams['testids'], string][]) {
    const c = o.controls[name];
    as.push({ id: `control:${tid}`, ok: c?.found === 1, expected: `one element with data-testid="${tid}"`, actual: `${c?.found ?? 0}` });
  }
  for (const name of ['temperature', 'topP', 'maxTokens'] as const) {
    const c = o.controls[name];
    const want = p.fields[name].default;
    const shown = c?.value ?? null;
    as.push({ id: `default:${p.testids[name]}`, ok: shown !== null && shown.trim() !== '' && Number(shown) === want, expected: String(want), actual: show(shown) });
  }
  return [...as, ...stepAssertion(o)];
}

function parseJson(s: string | null | undefined): unknown {
  if (typeof s !== 'string') return undefined;
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

/** choices[0].message.content of a chat completion body, or undefined. */
export function replyContent(body: string | null | undefined): string | undefined {
  const v = parseJson(body) as { choices?: { message?: { content?: unknown } }[] } | undefined;
  const c = v?.choices?.[0]?.message?.content;
  return typeof c === 'string' ? c : undefined;
}

/** The page's origin and the backend's, as the browser names them. */
export function allowedOrigins(p: BrowserParams): Set<string> {
  return new Set([`http://127.0.0.1:${p.port}`, `http://localhost:${p.port}`, `http://127.0.0.1:${p.backend.port}`, `http://localhost:${p.backend.port}`]);
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}

/** The request one send caused: one POST to the backend's chat path (or the same path of the page's origin) with exactly the grader's values. */
function roundRequestAssertions(r: z.infer<typeof Round>, i: number, p: BrowserParams): Assertion[] {
  const id = (s: string): string => `round${i + 1}:${s}`;
  if (r.actionError) return [{ id: id('controls'), ok: false, expected: 'the grader fills the controls and clicks send', actual: r.actionError }];
  const reqs = r.requests ?? [];
  const as: Assertion[] = [{ id: id('one-request'), ok: reqs.length === 1, expected: `one request to ${p.backend.path} per click`, actual: `${reqs.length}` }];
  const q = reqs[0];
  if (!q) return as;
  const origins = allowedOrigins(p);
  as.push({ id: id('target'), ok: q.method === 'POST' && origins.has(originOf(q.url)), expected: `POST to 127.0.0.1:${p.backend.port}${p.backend.path} or the page's own origin`, actual: `${q.method} ${q.url}` });
  const body = parseJson(q.postData) as Record<string, unknown> | undefined;
  const v = r.values;
  const msgs = Array.isArray(body?.['messages']) ? (body!['messages'] as { role?: unknown; content?: unknown }[]) : [];
  const last = msgs.at(-1);
  const same = (key: string, want: number): boolean => typeof body?.[key] === 'number' && body[key] === want;
  const bodyOk = !!body && last?.role === 'user' && last.content === v.prompt && same('temperature', v.temperature) && same('top_p', v.topP) && same('max_tokens', v.maxTokens);
  as.push({
    id: id('body'),
    ok: bodyOk,
    expected: `JSON with messages ending in {role: user, content: ${JSON.stringify(v.prompt)}}, temperature ${v.temperature}, top_p ${v.topP}, max_tokens ${v.maxTokens} (numbers)`,
    actual: show(q.postData ?? null, 400),
  });
  return as;
}

/** The browser got a chat answer, and it is the backend's own answer to that body (the grader's replay). */
function roundAnswerAssertions(r: z.infer<typeof Round>, i: number): Assertion[] {
  const q = r.requests?.[0];
  if (!q || r.actionError) return [];
  const id = (s: string): string => `round${i + 1}:${s}`;
  const got = q.response ? replyContent(q.response.body) : undefined;
  const replay = r.replay && ok2xx(r.replay.status) ? replyContent(r.replay.body) : undefined;
  return [
    {
      id: id('answered'),
      ok: !!q.response && ok2xx(q.response.status) && got !== undefined,
      expected: 'the browser received a chat completion (choices[0].message.content)',
      actual: q.failure ? `request failed: ${q.failure}` : q.response ? `${q.response.status} ${show(q.response.body ?? null, 200)}` : 'no response',
    },
    {
      id: id('backend-answer'),
      ok: got !== undefined && replay !== undefined && got === replay,
      expected: "the model backend's own answer to that body (the grader asked it the same)",
      actual: replay === undefined ? `the grader's replay got ${r.replay?.status ?? r.replay?.error ?? 'nothing'}` : got === replay ? 'same' : `browser got ${show(got ?? null)}, backend answers ${show(replay)}`,
    },
  ];
}

export function requestAssertions(o: Observation, p: BrowserParams): Assertion[] {
  const rounds = o.rounds ?? [];
  const as = rounds.flatMap((r, i) => [...roundRequestAssertions(r, i, p), ...roundAnswerAssertions(r, i)]);
  if (rounds.length === 0) as.push({ id: 'rounds', ok: false, expected: 'the grader sends from the page', actual: 'no round ran' });
  return [...as, ...stepAssertion(o)];
}

export function outputAssertions(o: Observation): Assertion[] {
  const rounds = o.rounds ?? [];
  const as: Assertion[] = [];
  rounds.forEach((r, i) => {
    const q = r.requests?.[0];
    const answer = roundAnswerAssertions(r, i);
    as.push(...answer);
    const got = q?.response ? replyContent(q.response.body) : undefined;
    const shown = r.shown ?? null;
    as.push({
      id: `round${i + 1}:shown`,
      ok: got !== undefined && got.trim() !== '' && shown !== null && shown.trim() === got.trim(),
      expected: got === undefined ? 'the answer to the grader’s request, shown in the output area' : `the output area shows the answer the browser received: ${show(got)}`,
      actual: r.actionError ? r.actionError : shown === null ? 'no output area' : show(shown),
    });
  });
  if (rounds.length === 0) as.push({ id: 'rounds', ok: false, expected: 'the grader sends from the page', actual: 'no round ran' });
  return [...as, ...stepAssertion(o)];
}

const WIRE: Record<ValidationCase['field'], string> = { temperature: 'temperature', topP: 'top_p', maxTokens: 'max_tokens' };

/**
 * An out-of-range value: nothing is sent and the error area says so. A range slider cannot hold
 * such a value at all: when the control itself kept it in range, sending is allowed as long as
 * what is sent lies in the range.
 */
export function validationAssertions(o: Observation, p: BrowserParams): Assertion[] {
  const as: Assertion[] = [];
  for (const c of o.cases ?? []) {
    const id = `${WIRE[c.field]}=${c.typed}`;
    if (c.actionError) {
      as.push({ id, ok: false, expected: 'the grader types the value and clicks send', actual: c.actionError });
      continue;
    }
    const f = p.fields[c.field];
    const sent = c.requests ?? [];
    const clamped = c.controlType === 'range' && c.shown != null && Number(c.shown) !== c.typed && Number(c.shown) >= f.min && Number(c.shown) <= f.max;
    if (clamped) {
      const inRange = sent.every((q) => {
        const v = (parseJson(q.postData) as Record<string, unknown> | undefined)?.[WIRE[c.field]];
        return typeof v === 'number' && v >= f.min && v <= f.max;
      });
      as.push({ id, ok: inRange, expected: `the slider keeps ${WIRE[c.field]} within ${f.min}–${f.max}; anything sent is in range`, actual: `slider shows ${c.shown}; ${sent.length} request(s)${inRange ? '' : ' out of range'}` });
      continue;
    }
    as.push({ id: `${id}:nothing-sent`, ok: sent.length === 0, expected: 'no request', actual: sent.length === 0 ? 'none' : `${sent.length}: ${show(sent[0]?.postData ?? null)}` });
    as.push({ id: `${id}:error-shown`, ok: !!c.error && c.error.trim() !== '', expected: 'a message in the error area', actual: c.error ? show(c.error) : '(empty)' });
  }
  if ((o.cases ?? []).length === 0) as.push({ id: 'cases', ok: false, expected: 'the grader tries out-of-range values', actual: 'none ran' });
  return [...as, ...stepAssertion(o)];
}

// ---------------------------------------------------------------------------------------------

function driverFailed(message: { zh: string; en: string }, details: Record<string, unknown>): DeploylabError {
  return new DeploylabError({ code: 'BROWSER_DRIVER_FAILED', fault: 'infrastructure', message, details });
}

/** Long strings of the observations cut short for the evidence. */
function compact(v: unknown, max = 600): unknown {
  if (typeof v === 'string') return v.length > max ? `${v.slice(0, max)}…` : v;
  if (Array.isArray(v)) return v.slice(0, 20).map((x) => compact(x, max));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, compact(x, max)]));
  return v;
}

const WHAT: Record<BrowserParams['aspect'], { zh: string; en: string }> = {
  vue: { zh: '页面是挂载的 Vue 3 应用', en: 'the page is a mounted Vue 3 app' },
  defaults: { zh: '参数控件及默认值', en: 'the parameter controls and their defaults' },
  request: { zh: '按输入值向模型服务发出的请求', en: 'the request sent to the model backend with the values entered' },
  output: { zh: '输出区显示模型服务的回答', en: "the output area shows the model backend's answer" },
  validation: { zh: '超出范围的参数值被拦截', en: 'out-of-range values are stopped' },
};

export const browserProbe = defineProbe({
  kind: 'browser',
  params: BrowserParamsSchema,
  async run(seat: SeatHandle, p: BrowserParams, deadline: Deadline): Promise<ProbeOutcome> {
    const url = `http://127.0.0.1:${p.port}${p.path}`;
    const timeoutMs = Math.max(5_000, Math.min(p.timeoutMs, deadline.remainingMs() - 2_000));
    const reactivity = { typed: pickValue(p.fields.temperature), prompt: `panel check ${nonce()}`, written: 0 };
    reactivity.written = pickValue(p.fields.temperature, [reactivity.typed]);
    const cfg = {
      url,
      aspect: p.aspect,
      testids: p.testids,
      chatPath: p.backend.path,
      backend: `http://127.0.0.1:${p.backend.port}`,
      reactivity,
      rounds: p.aspect === 'request' || p.aspect === 'output' ? graderRounds(p) : [],
      cases: p.aspect === 'validation' ? validationCases(p) : [],
      driverTimeoutMs: timeoutMs - 3_000,
    };
    const run = await capability(seat, 'toolbox')({
      copy: [],
      put: [{ path: '/work/driver.cjs', content: driverSource(), mode: 0o644 }],
      cmd: ['node', '/work/driver.cjs', JSON.stringify(cfg)],
      network: 'seat',
      timeoutMs,
    });
    if (run.timedOut) deadline.check();
    const evidence: Evidence[] = [
      {
        kind: 'command',
        argv: ['node', 'driver.cjs (the grader’s own)', JSON.stringify(cfg).slice(0, 2000)],
        where: run.where,
        exitCode: run.exitCode,
        stdout: clip(run.stdout.slice(-EVIDENCE_LIMITS.text)),
        stderr: clip(run.stderr.slice(-EVIDENCE_LIMITS.text)),
        durationMs: run.durationMs,
      },
    ];
    const last = run.stdout.trim().split('\n').at(-1) ?? '';
    const parsed = ObservationSchema.safeParse(parseJson(last));
    if (!parsed.success || !parsed.data.ok) {
      throw driverFailed(
        { zh: `评分方的浏览器驱动没有给出结果（退出码 ${run.exitCode}）`, en: `the grader's browser driver gave no reading (exit ${run.exitCode})` },
        { timedOut: run.timedOut, driverError: parsed.success && !parsed.data.ok ? parsed.data.driverError : undefined, stderr: run.stderr.slice(-2000), stdout: run.stdout.slice(-500) },
      );
    }
    const o = parsed.data;
    evidence.push(note('浏览器中观察到的情况', 'what the browser saw', compact(o) as Record<string, unknown>));
    if (!o.load.ok) {
      const what = { zh: `页面 ${url} 未能打开：${o.load.error ?? `HTTP ${o.load.status}`}`, en: `the page ${url} did not load: ${o.load.error ?? `HTTP ${o.load.status}`}` };
      if (o.load.error && /ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|ERR_EMPTY_RESPONSE/.test(o.load.error)) return judgeUnreachable(seat, what, evidence);
      return failed(what, evidence);
    }
    const assertions =
      p.aspect === 'vue'
        ? vueAssertions(o, p.vueBuilds!, reactivity.written)
        : p.aspect === 'defaults'
          ? defaultsAssertions(o, p)
          : p.aspect === 'request'
            ? requestAssertions(o, p)
            : p.aspect === 'output'
              ? outputAssertions(o)
              : validationAssertions(o, p);
    return judge(assertions, 'all', WHAT[p.aspect], evidence);
  },
});
