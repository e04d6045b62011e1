import { Counter, Gauge, Histogram, Registry, Summary } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { DeploylabError } from '../../runner/core/errors.js';
import { counterDelta, parsePrometheusText, sampleSum, samples } from './prometheus.js';

/**
 * llama-server --metrics, as its to_metrics() writes it (tools/server/server-task.cpp): C++
 * ostream number formatting (6 significant digits, so large values come out as 1.23457e+06),
 * colon names, no labels except the per-position speculative counter.
 */
const LLAMA_CPP_METRICS = `# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed, excluding cached tokens
# TYPE llamacpp:prompt_tokens_total counter
llamacpp:prompt_tokens_total 1.23457e+06
# HELP llamacpp:prompt_tokens_cached_total Number of prompt tokens reused from the cache
# TYPE llamacpp:prompt_tokens_cached_total counter
llamacpp:prompt_tokens_cached_total 0
# HELP llamacpp:prompt_seconds_total Total time spent processing prompts
# TYPE llamacpp:prompt_seconds_total counter
llamacpp:prompt_seconds_total 0.418
# HELP llamacpp:tokens_predicted_total Number of generation tokens processed
# TYPE llamacpp:tokens_predicted_total counter
llamacpp:tokens_predicted_total 96
# HELP llamacpp:tokens_predicted_seconds_total Total time spent generating tokens
# TYPE llamacpp:tokens_predicted_seconds_total counter
llamacpp:tokens_predicted_seconds_total 0.291
# HELP llamacpp:n_decode_total Total number of llama_decode() calls, excluding speculative decoding and multimodal decoding
# TYPE llamacpp:n_decode_total counter
llamacpp:n_decode_total 99
# HELP llamacpp:n_tokens_max Largest observed sequence length (prompt + generation)
# TYPE llamacpp:n_tokens_max counter
llamacpp:n_tokens_max 61
# HELP llamacpp:prompt_tokens_seconds Average prompt throughput in tokens/s
# TYPE llamacpp:prompt_tokens_seconds gauge
llamacpp:prompt_tokens_seconds 2953.52
# HELP llamacpp:predicted_tokens_seconds Average generation throughput in tokens/s
# TYPE llamacpp:predicted_tokens_seconds gauge
llamacpp:predicted_tokens_seconds 329.897
# HELP llamacpp:requests_processing Number of requests processing
# TYPE llamacpp:requests_processing gauge
llamacpp:requests_processing 0
# HELP llamacpp:requests_deferred Number of requests deferred
# TYPE llamacpp:requests_deferred gauge
llamacpp:requests_deferred 0
# HELP llamacpp:n_busy_slots_per_decode Average number of busy slots per llama_decode() call
# TYPE llamacpp:n_busy_slots_per_decode gauge
llamacpp:n_busy_slots_per_decode 1
# HELP llamacpp:spec_decode_num_accepted_tokens_per_pos_total Accepted tokens per draft position
# TYPE llamacpp:spec_decode_num_accepted_tokens_per_pos_total counter
llamacpp:spec_decode_num_accepted_tokens_per_pos_total{position="0"} 12
llamacpp:spec_decode_num_accepted_tokens_per_pos_total{position="1"} 7
`;

function rejects(text: string): DeploylabError {
  try {
    parsePrometheusText(text);
  } catch (e) {
    expect(e).toBeInstanceOf(DeploylabError);
    expect((e as DeploylabError).code).toBe('PROM_INVALID');
    expect((e as DeploylabError).fault).toBe('candidate');
    return e as DeploylabError;
  }
  throw new Error(`accepted: ${text}`);
}

describe('Prometheus text: llama.cpp /metrics', () => {
  const exp = parsePrometheusText(LLAMA_CPP_METRICS);

  it('reads colon names, types, help and C++-formatted values', () => {
    expect(exp.size).toBe(13);
    expect(exp.get('llamacpp:prompt_tokens_total')).toEqual({
      name: 'llamacpp:prompt_tokens_total',
      type: 'counter',
      help: 'Number of prompt tokens processed, excluding cached tokens',
      samples: [{ name: 'llamacpp:prompt_tokens_total', labels: {}, value: 1234570 }],
    });
    expect(sampleSum(exp, 'llamacpp:tokens_predicted_total')).toBe(96);
    expect(sampleSum(exp, 'llamacpp:n_decode_total')).toBe(99);
    expect(exp.get('llamacpp:predicted_tokens_seconds')?.type).toBe('gauge');
    expect(exp.get('llamacpp:n_decode_total')?.help).toBe(
      'Total number of llama_decode() calls, excluding speculative decoding and multimodal decoding',
    );
  });

  it('filters labelled samples and sums them', () => {
    const name = 'llamacpp:spec_decode_num_accepted_tokens_per_pos_total';
    expect(samples(exp, name, { position: '1' }).map((s) => s.value)).toEqual([7]);
    expect(sampleSum(exp, name)).toBe(19);
    expect(sampleSum(exp, 'llamacpp:no_such_total')).toBeNull();
  });

  it('measures how far a counter moved between two scrapes', () => {
    const after = parsePrometheusText(
      LLAMA_CPP_METRICS.replace('llamacpp:tokens_predicted_total 96', 'llamacpp:tokens_predicted_total 128'),
    );
    expect(counterDelta(exp, after, 'llamacpp:tokens_predicted_total')).toBe(32);
    expect(counterDelta(exp, after, 'llamacpp:prompt_tokens_total')).toBe(0);
    expect(counterDelta(exp, after, 'vllm:generation_tokens_total')).toBeNull();
  });
});

describe('Prometheus text: prom-client exposition', () => {
  it('reads counters with escaped labels, gauges, histograms and summaries', async () => {
    const reg = new Registry();
    const c = new Counter({ name: 'app_requests_total', help: 'Requests with "quotes" and \\ backslash\nnewline', labelNames: ['path', 'code'], registers: [reg] });
    c.inc({ path: '/v1/chat "x"\\y\nz', code: '200' }, 3);
    c.inc({ path: '/health', code: '503' });
    const g = new Gauge({ name: 'app_queue_depth', help: 'Queue depth', registers: [reg] });
    g.set(-2.5);
    const h = new Histogram({ name: 'app_latency_seconds', help: 'Latency', labelNames: ['route'], buckets: [0.1, 0.5, 1], registers: [reg] });
    for (const v of [0.05, 0.2, 0.3, 0.7, 3]) h.observe({ route: 'chat' }, v);
    const s = new Summary({ name: 'app_tokens', help: 'Tokens per reply', percentiles: [0.5, 0.9], registers: [reg] });
    for (const v of [10, 20, 30, 40]) s.observe(v);
    const text = await reg.metrics();

    const exp = parsePrometheusText(text);
    const reqs = exp.get('app_requests_total')!;
    expect(reqs.type).toBe('counter');
    expect(reqs.help).toBe('Requests with "quotes" and \\ backslash\nnewline');
    expect(samples(exp, 'app_requests_total', { code: '200' })).toEqual([
      { name: 'app_requests_total', labels: { path: '/v1/chat "x"\\y\nz', code: '200' }, value: 3 },
    ]);
    expect(sampleSum(exp, 'app_requests_total')).toBe(4);
    expect(sampleSum(exp, 'app_queue_depth')).toBe(-2.5);

    const lat = exp.get('app_latency_seconds')!;
    expect(lat.type).toBe('histogram');
    expect(samples(exp, 'app_latency_seconds_bucket').map((x) => [x.labels['le'], x.value])).toEqual([
      ['0.1', 1],
      ['0.5', 3],
      ['1', 4],
      ['+Inf', 5],
    ]);
    expect(sampleSum(exp, 'app_latency_seconds_count', { route: 'chat' })).toBe(5);
    expect(sampleSum(exp, 'app_latency_seconds_sum')).toBeCloseTo(4.25, 10);

    const tok = exp.get('app_tokens')!;
    expect(tok.type).toBe('summary');
    expect(samples(exp, 'app_tokens', { quantile: '0.5' })[0]?.value).toBe(25);
    expect(sampleSum(exp, 'app_tokens_count')).toBe(4);
    expect(sampleSum(exp, 'app_tokens_sum')).toBe(100);
  });

  it('reads timestamps, NaN and ±Inf, trailing commas and comments', () => {
    const exp = parsePrometheusText(
      [
        '# a free comment',
        '# TYPE up gauge',
        'up{job="a",} 1 1717200000000',
        'x_ratio NaN',
        'y_max +Inf',
        'y_min -Inf',
        '# EOF',
      ].join('\n'),
    );
    expect(samples(exp, 'up')).toEqual([{ name: 'up', labels: { job: 'a' }, value: 1, timestampMs: 1717200000000 }]);
    expect(sampleSum(exp, 'x_ratio')).toBeNaN();
    expect(sampleSum(exp, 'y_max')).toBe(Infinity);
    expect(sampleSum(exp, 'y_min')).toBe(-Infinity);
    expect(exp.get('x_ratio')?.type).toBe('untyped');
  });
});

describe('Prometheus text: malformed input is an error with its line', () => {
  it.each([
    ['no value', 'up\n', 'line 1: space expected before the value'],
    ['bad value', 'up one\n', 'line 1: invalid value "one"'],
    ['bad timestamp', 'up 1 12.5\n', 'invalid timestamp "12.5"'],
    ['unterminated label', 'up{job="a} 1\n', 'unterminated value of label job'],
    ['unknown escape', 'up{job="a\\t"} 1\n', 'unknown escape \\t'],
    ['repeated label', 'up{a="1",a="2"} 1\n', 'label a repeated'],
    ['duplicate sample', 'up{a="1"} 1\nup{a="1"} 2\n', 'line 2: duplicate sample'],
    ['unknown type', '# TYPE up gauges\nup 1\n', 'unknown metric type "gauges"'],
    ['second TYPE', '# TYPE up gauge\n# TYPE up counter\n', 'second TYPE for up'],
    ['TYPE after samples', 'up 1\n# TYPE up gauge\n', 'line 2: TYPE for up after its samples'],
    ['bucket without le', '# TYPE h histogram\nh_bucket 1\n', 'histogram bucket h_bucket without le'],
    ['no +Inf bucket', '# TYPE h histogram\nh_bucket{le="1"} 1\nh_count 1\n', 'histogram h has no +Inf bucket'],
    ['not cumulative', '# TYPE h histogram\nh_bucket{le="1"} 3\nh_bucket{le="+Inf"} 2\n', 'not cumulative'],
    ['+Inf differs from count', '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_count 3\n', '+Inf bucket 2 differs from _count 3'],
    ['negative counter', '# TYPE c counter\nc -1\n', 'c is negative'],
    ['summary without quantile', '# TYPE s summary\ns 1\n', 'without a valid quantile'],
    ['garbage', '<html>502 Bad Gateway</html>\n', 'line 1: metric name expected'],
  ])('%s', (_what, text, message) => {
    expect(rejects(text).message).toContain(message);
  });

  it('an empty exposition is valid and has no families', () => {
    expect(parsePrometheusText('').size).toBe(0);
  });
});
