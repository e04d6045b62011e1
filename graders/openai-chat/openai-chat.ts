/**
 * `openai-chat` probe: chat completions through the candidate's OpenAI-compatible endpoint (their
 * model server or their gateway in front of it), streamed or not, judged on the answer's shape,
 * its token usage and latency, and on two kinds of proof that a model produced it:
 *
 * - provenance (when the check names a reference): every request carries a fresh random nonce,
 *   and each answer's text must be the reference model server's own answer to exactly that
 *   request (greedy decoding makes it reproducible). Nonces are chosen on the reference first so
 *   that their answers are well-formed and differ from each other: a canned text, a replayed
 *   earlier answer, the model's answer to some other question or another server's answer cannot
 *   match them all;
 * - the model server's own token counter (Prometheus) having moved by at least the tokens the
 *   answers claim. Side traffic moves it too, so it is supporting evidence, never proof.
 */
import { randomBytes } from 'node:crypto';
import type { z } from 'zod';
import { OpenAIChatParamsSchema } from './params.js';
import { judge, show, type Assertion } from '../shared/assertions.js';
import { httpRequest } from '../shared/http-request.js';
import { seatUrl, type Target } from '../shared/seat-url.js';
import { counterDelta, parsePrometheusText, samples, type Exposition } from '../parsers/prometheus.js';
import { parseChatCompletion, readChatStream, type ChatStream } from '../parsers/openai.js';
import {
  boundSamples,
  clip,
  clipHeaders,
  defineProbe,
  errored,
  failed,
  judgeUnreachable,
  note,
  type Deadline,
  type Evidence,
  type HttpEvidence,
  type ProbeOutcome,
  type SeatHandle,
} from '../probe.js';
import { DeploylabError, isDeploylabError } from '../../runner/core/errors.js';
import { freshFetch } from '../shared/fresh-fetch.js';

export type OpenaiChatParams = z.output<typeof OpenAIChatParamsSchema>;
type Counter = { target: Target; path: string; metric: string };
type Provenance = NonNullable<OpenaiChatParams['provenance']>;

type Scrape = { ok: true; exp: Exposition; evidence: HttpEvidence } | { ok: false; outcome?: ProbeOutcome; problem: string; evidence: Evidence[] };

async function scrape(seat: SeatHandle, c: Counter, deadline: Deadline): Promise<Scrape> {
  const attempt = await httpRequest(seat, { target: c.target, method: 'GET', path: c.path, headers: {}, timeoutMs: 10_000, readBytes: 4 * 1024 * 1024 }, deadline);
  if (attempt.kind === 'unreachable') {
    // Only a broken harness path makes this an error; otherwise the metrics endpoint is missing.
    const o = await judgeUnreachable(seat, { zh: '指标端点不可达', en: 'metrics endpoint unreachable' }, [attempt.evidence]);
    return o.status === 'error' ? { ok: false, outcome: o, problem: attempt.code, evidence: [attempt.evidence] } : { ok: false, problem: `unreachable (${attempt.code})`, evidence: [attempt.evidence] };
  }
  if (attempt.kind === 'slow') return { ok: false, problem: 'timed out', evidence: [attempt.evidence] };
  if (attempt.exchange.status !== 200) return { ok: false, problem: `HTTP ${attempt.exchange.status}`, evidence: [attempt.evidence] };
  try {
    return { ok: true, exp: parsePrometheusText(attempt.exchange.body.toString('utf8')), evidence: attempt.evidence };
  } catch (e) {
    if (isDeploylabError(e) && e.fault === 'candidate') return { ok: false, problem: e.message, evidence: [attempt.evidence] };
    throw e;
  }
}

interface Answer {
  status: number;
  model: string | null;
  content: string;
  completionTokens: number | null;
  finishReason: string | null;
  ttftMs: number | null;
  e2eMs: number;
  /** Why the answer is unusable, when it is. */
  problem: string | null;
  evidence: Evidence[];
}

/** One chat completion as sent: to the candidate, and byte for byte the same to the reference. */
type ChatBody = Record<string, unknown> & { stream: boolean };

export function chatBody(p: Pick<OpenaiChatParams, 'model' | 'maxTokens' | 'cachePrompt'>, content: string, stream: boolean): ChatBody {
  return {
    ...(p.model ? { model: p.model } : {}),
    messages: [{ role: 'user', content }],
    max_tokens: p.maxTokens,
    stream,
    ...(stream ? { stream_options: { include_usage: true } } : {}),
    temperature: 0,
    ...(p.cachePrompt !== undefined ? { cache_prompt: p.cachePrompt } : {}),
  };
}

type Exchange =
  | { kind: 'answer'; answer: Answer }
  /** The allowance ran out. */
  | { kind: 'slow'; ms: number; evidence: HttpEvidence }
  /** No answer at all: refused, reset. */
  | { kind: 'unreachable'; code: string; evidence: HttpEvidence };

async function exchange(
  seat: SeatHandle,
  to: { target: Target; path: string; headers: Record<string, string> },
  body: ChatBody,
  allowanceMs: number,
  deadline: Deadline,
): Promise<Exchange> {
  if (!body.stream) {
    const attempt = await httpRequest(seat, { target: to.target, path: to.path, headers: to.headers, timeoutMs: allowanceMs, method: 'POST', body }, deadline);
    if (attempt.kind === 'slow') return { kind: 'slow', ms: allowanceMs, evidence: attempt.evidence };
    if (attempt.kind === 'unreachable') return { kind: 'unreachable', code: attempt.code, evidence: attempt.evidence };
    const x = attempt.exchange;
    const a: Answer = { status: x.status, model: null, content: '', completionTokens: null, finishReason: null, ttftMs: null, e2eMs: x.latencyMs, problem: null, evidence: [attempt.evidence] };
    if (x.status !== 200) return { kind: 'answer', answer: { ...a, problem: `HTTP ${x.status}` } };
    try {
      const r = parseChatCompletion(JSON.parse(x.body.toString('utf8')));
      const choice = r.choices[0]!;
      return { kind: 'answer', answer: { ...a, model: r.model, content: choice.message.content ?? '', completionTokens: r.usage.completion_tokens, finishReason: choice.finish_reason } };
    } catch (e) {
      return { kind: 'answer', answer: { ...a, problem: e instanceof Error ? e.message : String(e) } };
    }
  }

  // Streaming: our own fetch, so each network read is stamped as it arrives.
  const url = await seatUrl(seat, to.target, to.path);
  const headers = new Headers(to.headers);
  headers.set('content-type', 'application/json');
  const text = JSON.stringify(body);
  const request: HttpEvidence['request'] = { method: 'POST', url, headers: clipHeaders(headers.entries()), body: clip(text) };
  const allowance = AbortSignal.timeout(allowanceMs);
  const t0 = performance.now();
  let raw = '';
  let status = 0;
  let resHeaders: [string, string][] = [];
  const evidence = (failure?: string): HttpEvidence => ({
    kind: 'http',
    request,
    ...(status ? { response: { status, headers: resHeaders, body: clip(raw) } } : {}),
    ...(failure ? { failure } : {}),
    durationMs: Math.round(performance.now() - t0),
  });
  const bare = (problem: string | null, e2eMs: number): Answer => ({ status, model: null, content: '', completionTokens: null, finishReason: null, ttftMs: null, e2eMs, problem, evidence: [evidence()] });
  try {
    const res = await freshFetch(url, { method: 'POST', headers, body: text, signal: AbortSignal.any([deadline.signal, allowance]) });
    status = res.status;
    resHeaders = clipHeaders(res.headers.entries());
    if (res.status !== 200 || !res.body) {
      raw = await res.text();
      return { kind: 'answer', answer: bare(`HTTP ${status}`, performance.now() - t0) };
    }
    let s: ChatStream | null = null;
    let problem: string | null = null;
    try {
      s = await readChatStream(res.body, t0, (piece) => {
        if (raw.length < 65536) raw += piece;
      });
    } catch (e) {
      if (!isDeploylabError(e) || e.fault !== 'candidate') throw e;
      problem = e.message;
    }
    const e2eMs = Math.round(performance.now() - t0);
    if (!s) return { kind: 'answer', answer: bare(problem, e2eMs) };
    return {
      kind: 'answer',
      answer: {
        status,
        model: s.chunks[0]?.chunk.model ?? null,
        content: s.content,
        completionTokens: s.usage?.completion_tokens ?? null,
        finishReason: s.finishReason,
        ttftMs: s.metrics.ttftMs,
        e2eMs: s.metrics.e2eMs ?? e2eMs,
        problem: s.done ? null : 'stream ended without data: [DONE]',
        evidence: [evidence(), note('流式响应的计时', 'stream timings', { ...s.metrics, chunks: s.chunks.length })],
      },
    };
  } catch (e) {
    if (deadline.signal.aborted) throw deadline.signal.reason;
    if (allowance.aborted) return { kind: 'slow', ms: allowanceMs, evidence: evidence(`timeout after ${allowanceMs} ms`) };
    if (status) throw e;
    const code = (e as { cause?: { code?: string } }).cause?.code ?? (e instanceof Error ? e.message : String(e));
    return { kind: 'unreachable', code, evidence: evidence(code) };
  }
}

/** The candidate's answer, or the outcome when there is none (unreachable: whose fault; slow: fail). */
async function askCandidate(seat: SeatHandle, p: OpenaiChatParams, body: ChatBody, allowanceMs: number, deadline: Deadline): Promise<Answer | ProbeOutcome> {
  const x = await exchange(seat, p, body, allowanceMs, deadline);
  if (x.kind === 'answer') return x.answer;
  if (x.kind === 'slow') return failed({ zh: `服务在 ${x.ms} 毫秒内没有完成响应`, en: `the service did not answer within ${x.ms} ms` }, [x.evidence]);
  return judgeUnreachable(seat, { zh: `无法连接考生的服务（${x.code}）`, en: `the candidate's service is unreachable (${x.code})` }, [x.evidence]);
}

/** Each reference call's own allowance: the tiny greedy model answers in well under a second. */
const REFERENCE_ALLOWANCE_MS = 15_000;

function referenceFailed(what: { zh: string; en: string }, evidence: Evidence[]): ProbeOutcome {
  return errored(
    new DeploylabError({
      code: 'PROBE_REFERENCE_FAILED',
      fault: 'infrastructure',
      message: { zh: `参照模型服务无法提供参照回答：${what.zh}`, en: `the reference model server could not give reference answers: ${what.en}` },
      hint: { zh: '检查题目的模型服务（它由评分方启动，考生无法停止）；可重新评分', en: "check the task's model server (the harness starts it; the candidate cannot stop it); re-grade the check" },
    }),
    evidence,
  );
}

/** A reference answer's text, or why the reference gave none for this request. */
async function askReference(seat: SeatHandle, pv: Provenance, body: ChatBody, deadline: Deadline): Promise<{ text: string | null; why: string; evidence: Evidence[] } | ProbeOutcome> {
  const allowance = Math.max(1000, Math.min(REFERENCE_ALLOWANCE_MS, deadline.remainingMs() - 500));
  const x = await exchange(seat, { target: pv.target, path: pv.path, headers: {} }, body, allowance, deadline);
  if (x.kind === 'slow') return referenceFailed({ zh: `${x.ms} 毫秒内没有回答`, en: `no answer within ${x.ms} ms` }, [x.evidence]);
  if (x.kind === 'unreachable') return referenceFailed({ zh: `无法连接（${x.code}）`, en: `unreachable (${x.code})` }, [x.evidence]);
  const a = x.answer;
  if (a.problem !== null) return { text: null, why: a.problem, evidence: a.evidence };
  if (a.content.trim() === '') return { text: null, why: 'empty content', evidence: a.evidence };
  return { text: a.content, why: '', evidence: a.evidence };
}

export function nonceMessage(template: string, nonce: string): string {
  return template.replaceAll('{nonce}', nonce);
}

interface Planned {
  nonce: string;
  body: ChatBody;
  /** The reference's text for this very request, before the candidate was asked. */
  reference: string;
}

/**
 * Nonces whose reference answers are usable: well-formed and non-empty (the random-weight model
 * refuses some prompts with a 500), streamed ones identical to the unstreamed answer (so a
 * gateway that streams an unstreamed answer is judged alike), and pairwise different.
 */
async function plan(seat: SeatHandle, p: OpenaiChatParams, pv: Provenance, deadline: Deadline): Promise<Planned[] | ProbeOutcome> {
  const chosen: Planned[] = [];
  const tried: { nonce: string; reference: string | null; why: string }[] = [];
  for (let i = 0; i < pv.attempts && chosen.length < pv.requests; i++) {
    const nonce = randomBytes(8).toString('hex');
    const body = chatBody(p, nonceMessage(pv.message, nonce), p.stream);
    const r = await askReference(seat, pv, body, deadline);
    if ('score' in r) return r;
    let why = r.why;
    if (r.text !== null && p.stream) {
      const plain = await askReference(seat, pv, chatBody(p, nonceMessage(pv.message, nonce), false), deadline);
      if ('score' in plain) return plain;
      if (plain.text !== r.text) why = `unstreamed answer differs (${plain.text === null ? plain.why : show(plain.text, 80)})`;
    }
    if (r.text !== null && !why && chosen.some((c) => c.reference === r.text)) why = 'same text as an earlier nonce';
    tried.push({ nonce, reference: r.text, why: why || 'chosen' });
    if (r.text !== null && !why) chosen.push({ nonce, body, reference: r.text });
  }
  if (chosen.length < pv.requests) {
    return referenceFailed(
      { zh: `${pv.attempts} 个随机值中只有 ${chosen.length} 个得到可用且互不相同的回答`, en: `only ${chosen.length} of ${pv.attempts} nonces got usable, pairwise different answers` },
      [note('参照服务对各随机值的回答', 'reference answers per nonce', { tried })],
    );
  }
  return chosen;
}

export const openaiChatProbe = defineProbe({
  kind: 'openai-chat',
  params: OpenAIChatParamsSchema,
  async run(seat, p, deadline) {
    const e = p.expect;
    const pv = p.provenance;
    const counter: Counter | null = e.serverCounter ? { target: e.serverCounter.target ?? p.target, path: e.serverCounter.path, metric: e.serverCounter.metric } : null;

    // Which requests: fresh nonces chosen on the reference, or the one fixed prompt.
    let planned: Planned[] | null = null;
    if (pv) {
      const r = await plan(seat, p, pv, deadline);
      if (!Array.isArray(r)) return r;
      planned = r;
    }
    const bodies = planned ? planned.map((x) => x.body) : [chatBody(p, p.prompt, p.stream)];

    const before = counter ? await scrape(seat, counter, deadline) : null;
    if (before && !before.ok && before.outcome) return before.outcome;

    // The candidate's allowance is split over the requests, with a share left for the reference.
    const allowanceMs = planned ? Math.max(1000, Math.floor(p.timeoutMs / (bodies.length + 1))) : p.timeoutMs;
    const answers: Answer[] = [];
    for (const body of bodies) {
      const answer = await askCandidate(seat, p, body, allowanceMs, deadline);
      if ('score' in answer) return answer;
      answers.push(answer);
    }

    const a: Assertion[] = [];
    const evidence: Evidence[] = answers.flatMap((x) => x.evidence);
    const tag = (id: string, i: number): string => (answers.length > 1 ? `${id}#${i + 1}` : id);
    answers.forEach((answer, i) => {
      a.push({ id: tag('response', i), ok: answer.problem === null, expected: p.stream ? 'an OpenAI chat stream ending in [DONE]' : 'an OpenAI chat completion', actual: answer.problem ?? 'ok' });
      const tokens = answer.completionTokens;
      if (e.usage) {
        a.push({ id: tag('usage', i), ok: tokens !== null && tokens >= e.minCompletionTokens, expected: `completion_tokens ≥ ${e.minCompletionTokens}`, actual: tokens === null ? '(no usage)' : String(tokens) });
      }
      a.push({ id: tag('content', i), ok: answer.content.trim().length > 0, expected: 'non-empty content', actual: show(answer.content) });
      if (e.model !== undefined) a.push({ id: tag('model', i), ok: answer.model === e.model, expected: e.model, actual: String(answer.model) });
    });

    if (counter && before) {
      const after = await scrape(seat, counter, deadline);
      if (!after.ok && after.outcome) return after.outcome;
      const need = answers.reduce((n, x) => n + Math.max(1, x.completionTokens ?? 1), 0);
      if (before.ok && after.ok) {
        const delta = counterDelta(before.exp, after.exp, counter.metric);
        a.push({ id: 'serverCounter', ok: delta !== null && delta >= need, expected: `${counter.metric} +≥ ${need}`, actual: delta === null ? '(counter absent)' : `+${delta}` });
        evidence.push(
          boundSamples(`before ${counter.path}`, samples(before.exp, counter.metric)),
          boundSamples(`after ${counter.path}`, samples(after.exp, counter.metric)),
        );
      } else {
        const problem = !before.ok ? before.problem : !after.ok ? after.problem : '';
        a.push({ id: 'serverCounter', ok: false, expected: `${counter.metric} readable at ${counter.path}`, actual: problem });
        if (!before.ok) evidence.push(...before.evidence);
        if (!after.ok) evidence.push(...after.evidence);
      }
    }

    if (planned && pv) {
      // Asked again now that the candidate has answered: either text is the reference's own.
      const rows: Record<string, unknown>[] = [];
      for (const [i, x] of planned.entries()) {
        const again = await askReference(seat, pv, x.body, deadline);
        if ('score' in again) return again;
        evidence.push(...again.evidence.filter((ev) => ev.kind === 'http'));
        const accepted = [x.reference, ...(again.text !== null && again.text !== x.reference ? [again.text] : [])];
        const got = answers[i]!.content;
        const ok = answers[i]!.problem === null && accepted.includes(got);
        a.push({ id: tag('provenance', i), ok, expected: `the reference's answer to request ${i + 1}: ${show(x.reference)}`, actual: show(got) });
        rows.push({ request: i + 1, nonce: x.nonce, message: nonceMessage(pv.message, x.nonce), candidate: got, reference: x.reference, referenceAgain: again.text ?? `(none: ${again.why})`, match: ok });
      }
      evidence.push(note('来源核对：考生的回答与参照模型服务对同一请求的回答', "provenance: the candidate's answers beside the reference server's answers to the same requests", { reference: `${pv.target.port}${pv.path}`, requests: rows }));
    }
    return judge(a, 'all', { zh: '对话补全接口', en: 'chat completions API' }, evidence);
  },
});
