/**
 * `openai-chat` probe: one chat completion through the candidate's OpenAI-compatible endpoint
 * (their model server or their gateway in front of it), streamed or not, judged on the answer's
 * shape, its token usage and latency, and, so that canned JSON cannot pass, on the model
 * server's own token counter (Prometheus) having moved by at least the tokens the answer claims.
 */
import type { z } from 'zod';
import { OpenAIChatParamsSchema } from '../runner/tasks/probe-params.js';
import { judge, show, type Assertion } from './assertions.js';
import { httpRequest, noResponseOutcome, seatUrl, type Target } from './http.js';
import { counterDelta, parsePrometheusText, samples, type Exposition } from './parsers/prometheus.js';
import { parseChatCompletion, readChatStream, type ChatStream } from './parsers/openai.js';
import {
  boundSamples,
  clip,
  clipHeaders,
  defineProbe,
  failed,
  judgeUnreachable,
  note,
  type Deadline,
  type Evidence,
  type HttpEvidence,
  type ProbeOutcome,
  type SeatHandle,
} from './probe.js';
import { isDeploylabError } from '../runner/core/errors.js';

export type OpenaiChatParams = z.output<typeof OpenAIChatParamsSchema>;
type Counter = { target: Target; path: string; metric: string };

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

async function ask(seat: SeatHandle, p: OpenaiChatParams, deadline: Deadline): Promise<Answer | ProbeOutcome> {
  const body = {
    ...(p.model ? { model: p.model } : {}),
    messages: [{ role: 'user', content: p.prompt }],
    max_tokens: p.maxTokens,
    stream: p.stream,
    ...(p.stream ? { stream_options: { include_usage: true } } : {}),
    temperature: 0,
  };
  if (!p.stream) {
    const attempt = await httpRequest(seat, { target: p.target, path: p.path, headers: p.headers, timeoutMs: p.timeoutMs, method: 'POST', body }, deadline);
    const early = await noResponseOutcome(seat, attempt, p.timeoutMs);
    if (early || attempt.kind !== 'response') return early!;
    const x = attempt.exchange;
    const a: Answer = { status: x.status, model: null, content: '', completionTokens: null, finishReason: null, ttftMs: null, e2eMs: x.latencyMs, problem: null, evidence: [attempt.evidence] };
    if (x.status !== 200) return { ...a, problem: `HTTP ${x.status}` };
    try {
      const r = parseChatCompletion(JSON.parse(x.body.toString('utf8')));
      const choice = r.choices[0]!;
      return { ...a, model: r.model, content: choice.message.content ?? '', completionTokens: r.usage.completion_tokens, finishReason: choice.finish_reason };
    } catch (e) {
      return { ...a, problem: e instanceof Error ? e.message : String(e) };
    }
  }

  // Streaming: our own fetch, so each network read is stamped as it arrives.
  const url = await seatUrl(seat, p.target, p.path);
  const headers = new Headers(p.headers);
  headers.set('content-type', 'application/json');
  const text = JSON.stringify(body);
  const request: HttpEvidence['request'] = { method: 'POST', url, headers: clipHeaders(headers.entries()), body: clip(text) };
  const allowance = AbortSignal.timeout(p.timeoutMs);
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
  try {
    const res = await fetch(url, { method: 'POST', headers, body: text, signal: AbortSignal.any([deadline.signal, allowance]) });
    status = res.status;
    resHeaders = clipHeaders(res.headers.entries());
    if (res.status !== 200 || !res.body) {
      raw = await res.text();
      return { status, model: null, content: '', completionTokens: null, finishReason: null, ttftMs: null, e2eMs: performance.now() - t0, problem: `HTTP ${status}`, evidence: [evidence()] };
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
    if (!s) return { status, model: null, content: '', completionTokens: null, finishReason: null, ttftMs: null, e2eMs, problem, evidence: [evidence()] };
    return {
      status,
      model: s.chunks[0]?.chunk.model ?? null,
      content: s.content,
      completionTokens: s.usage?.completion_tokens ?? null,
      finishReason: s.finishReason,
      ttftMs: s.metrics.ttftMs,
      e2eMs: s.metrics.e2eMs ?? e2eMs,
      problem: s.done ? null : 'stream ended without data: [DONE]',
      evidence: [evidence(), note('流式响应的计时', 'stream timings', { ...s.metrics, chunks: s.chunks.length })],
    };
  } catch (e) {
    if (deadline.signal.aborted) throw deadline.signal.reason;
    if (allowance.aborted) {
      return failed({ zh: `服务在 ${p.timeoutMs} 毫秒内没有完成响应`, en: `the service did not answer within ${p.timeoutMs} ms` }, [evidence(`timeout after ${p.timeoutMs} ms`)]);
    }
    if (status) throw e;
    const code = (e as { cause?: { code?: string } }).cause?.code ?? (e instanceof Error ? e.message : String(e));
    return judgeUnreachable(seat, { zh: `无法连接考生的服务（${code}）`, en: `the candidate's service is unreachable (${code})` }, [evidence(code)]);
  }
}

export const openaiChatProbe = defineProbe({
  kind: 'openai-chat',
  params: OpenAIChatParamsSchema,
  async run(seat, p, deadline) {
    const e = p.expect;
    const counter: Counter | null = e.serverCounter ? { target: e.serverCounter.target ?? p.target, path: e.serverCounter.path, metric: e.serverCounter.metric } : null;
    const before = counter ? await scrape(seat, counter, deadline) : null;
    if (before && !before.ok && before.outcome) return before.outcome;

    const answer = await ask(seat, p, deadline);
    if ('score' in answer) return answer;

    const a: Assertion[] = [];
    const evidence: Evidence[] = [...answer.evidence];
    a.push({ id: 'response', ok: answer.problem === null, expected: p.stream ? 'an OpenAI chat stream ending in [DONE]' : 'an OpenAI chat completion', actual: answer.problem ?? 'ok' });
    const tokens = answer.completionTokens;
    if (e.usage) {
      a.push({ id: 'usage', ok: tokens !== null && tokens >= e.minCompletionTokens, expected: `completion_tokens ≥ ${e.minCompletionTokens}`, actual: tokens === null ? '(no usage)' : String(tokens) });
    }
    a.push({ id: 'content', ok: answer.content.trim().length > 0, expected: 'non-empty content', actual: show(answer.content) });
    if (e.model !== undefined) a.push({ id: 'model', ok: answer.model === e.model, expected: e.model, actual: String(answer.model) });

    if (counter && before) {
      const after = await scrape(seat, counter, deadline);
      if (!after.ok && after.outcome) return after.outcome;
      const need = Math.max(1, tokens ?? 1);
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
    return judge(a, 'all', { zh: '对话补全接口', en: 'chat completions API' }, evidence);
  },
});
