import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DeploylabError } from '../../runner/core/errors.js';
import { histogramQuantile, parseVllmMetrics, type VllmMetricsReading, type VllmModelReading } from './vllm-metrics.js';

const DIR = join(import.meta.dirname, '__fixtures__', 'vllm');
const fixture = (name: string): string => readFileSync(join(DIR, name), 'utf8');

function vllm(text: string): Extract<VllmMetricsReading, { kind: 'vllm' }> {
  const r = parseVllmMetrics(text);
  if (r.kind !== 'vllm') throw new Error(`expected a vLLM reading, got ${r.kind}`);
  return r;
}
function model(r: Extract<VllmMetricsReading, { kind: 'vllm' }>, name: string): VllmModelReading {
  const m = r.models[name];
  if (!m) throw new Error(`no model ${name}; have ${Object.keys(r.models).join(', ')}`);
  return m;
}

/** llama-server --metrics (its first families, as in prometheus.test.ts). */
const LLAMA_CPP = `# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed, excluding cached tokens
# TYPE llamacpp:prompt_tokens_total counter
llamacpp:prompt_tokens_total 1.23457e+06
# HELP llamacpp:requests_processing Number of requests processing
# TYPE llamacpp:requests_processing gauge
llamacpp:requests_processing 0
`;

describe('parseVllmMetrics on real captures', () => {
  it('reads a V0-era page (0.6, Llama-3.1-8B): gpu_cache_usage_perc beside the swap gauges', () => {
    const r = vllm(fixture('metrics-v0.6-llama-3.1-8b.prom'));
    expect(r.family).toBe('v0-legacy');
    expect(Object.keys(r.models)).toEqual(['meta-llama/Llama-3.1-8B-Instruct']);
    const m = model(r, 'meta-llama/Llama-3.1-8B-Instruct');
    expect(m).toMatchObject({
      engines: [],
      requestsRunning: 0,
      requestsWaiting: 0,
      promptTokensTotal: 0,
      generationTokensTotal: 0,
      kvCacheUsage: 0,
      kvCacheMetric: 'vllm:gpu_cache_usage_perc',
    });
    // This page has no request_success_total and no histograms: unknown, not zero.
    expect(m.requestSuccessByReason).toBeNull();
    expect(m.requestSuccessTotal).toBeNull();
    expect(m.timeToFirstToken).toBeNull();
    expect(m.e2eRequestLatency).toBeNull();
    expect(r.cacheConfig).toHaveLength(1);
    expect(r.cacheConfig[0]).toMatchObject({
      gpuMemoryUtilization: 0.9,
      blockSize: 16,
      numGpuBlocks: 2375,
      cacheDtype: 'auto',
      enablePrefixCaching: false,
      modelName: null,
      engine: null,
    });
    expect(r.cacheConfig[0]!.labels['num_cpu_blocks']).toBe('2048');
  });

  it('reads a 0.9-era page (Qwen3-0.6B): token totals, finish reasons, TTFT and e2e histograms', () => {
    const r = vllm(fixture('metrics-0.9-era-qwen3-0.6b.prom'));
    expect(r.family).toBe('gpu-cache-usage');
    const m = model(r, 'Qwen/Qwen3-0.6B');
    expect(m).toMatchObject({
      requestsRunning: 0,
      requestsWaiting: 0,
      promptTokensTotal: 43952,
      generationTokensTotal: 4874,
      requestSuccessByReason: { length: 38 },
      requestSuccessTotal: 38,
      kvCacheUsage: 0,
      kvCacheMetric: 'vllm:gpu_cache_usage_perc',
    });
    const ttft = m.timeToFirstToken!;
    expect(ttft.count).toBe(69);
    expect(ttft.sum).toBeCloseTo(4941.843970537186, 9);
    expect(ttft.buckets).toHaveLength(23);
    expect(ttft.buckets[ttft.buckets.length - 1]).toEqual({ le: Infinity, count: 69 });
    // By hand: rank 34.5 lies in (7.5, 10] holding 31→36: 7.5 + 2.5 × 3.5/5 = 9.25.
    expect(ttft.p50).toBeCloseTo(9.25, 9);
    // rank 62.1 in (160, 640] holding 56→69: 160 + 480 × 6.1/13.
    expect(ttft.p90).toBeCloseTo(160 + (480 * 6.1) / 13, 9);
    const e2e = m.e2eRequestLatency!;
    expect(e2e.count).toBe(38);
    expect(e2e.sum).toBeCloseTo(902.0056705474854, 9);
    // rank 19 in (15, 20] holding 1→28: 15 + 5 × 18/27.
    expect(e2e.p50).toBeCloseTo(15 + (5 * 18) / 27, 9);
    expect(r.cacheConfig[0]).toMatchObject({ gpuMemoryUtilization: 0.9, blockSize: 16, numGpuBlocks: 2340, enablePrefixCaching: null });
  });

  it('reads a 0.10.0 excerpt (GLM-4.5): kv_cache_usage_perc with the engine label', () => {
    const r = vllm(fixture('metrics-v0.10.0-glm-4.5-excerpt.prom'));
    expect(r.family).toBe('kv-cache-usage');
    const m = model(r, 'zai-org/GLM-4.5');
    expect(m.engines).toEqual(['0']);
    expect(m.kvCacheUsage).toBe(9.75010481363281e-6);
    expect(m.kvCacheMetric).toBe('vllm:kv_cache_usage_perc');
    // The excerpt holds none of these families.
    expect(m.requestsRunning).toBeNull();
    expect(m.promptTokensTotal).toBeNull();
    expect(m.timeToFirstToken).toBeNull();
    expect(r.cacheConfig).toEqual([]);
  });
});

describe('parseVllmMetrics on what is not a vLLM page', () => {
  it('tells llama-server metrics apart', () => {
    expect(parseVllmMetrics(LLAMA_CPP)).toMatchObject({ kind: 'not-vllm', server: 'llama.cpp' });
  });

  it('refuses a page that mixes llama.cpp and vLLM names', () => {
    const mixed = LLAMA_CPP + 'vllm:num_requests_running{model_name="m"} 3.0\n';
    const r = parseVllmMetrics(mixed);
    expect(r).toMatchObject({ kind: 'not-vllm', server: 'llama.cpp' });
    expect(r.kind === 'not-vllm' && r.reason).toMatch(/both/);
  });

  it('says empty for an empty page and not-vllm for an unrelated one', () => {
    expect(parseVllmMetrics('')).toEqual({ kind: 'empty' });
    expect(parseVllmMetrics('  \n\n')).toEqual({ kind: 'empty' });
    expect(parseVllmMetrics('# HELP up x\n# TYPE up gauge\nup 1\n')).toMatchObject({ kind: 'not-vllm', server: 'unknown', names: ['up'] });
  });

  it('throws PROM_INVALID for malformed text rather than guessing', () => {
    expect(() => parseVllmMetrics('vllm:num_requests_running{model_name="m" 1\n')).toThrow(DeploylabError);
    try {
      parseVllmMetrics('vllm:num_requests_running{model_name="m" 1\n');
    } catch (e) {
      expect((e as DeploylabError).code).toBe('PROM_INVALID');
    }
  });
});

describe('vLLM readings keep unknown apart from zero', () => {
  it('a family declared without samples gives null, not 0', () => {
    // vLLM 0.5.4 served HELP/TYPE lines before any sample existed.
    const r = vllm('# HELP vllm:num_requests_running x\n# TYPE vllm:num_requests_running gauge\n# HELP vllm:gpu_cache_usage_perc x\n# TYPE vllm:gpu_cache_usage_perc gauge\n');
    expect(r.family).toBe('gpu-cache-usage');
    expect(r.models).toEqual({});
  });

  it('sums data-parallel engines, keeps the fullest KV cache, merges histograms bucket by bucket', () => {
    const text = `# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
vllm:num_requests_running{engine="1",model_name="m"} 2.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
vllm:kv_cache_usage_perc{engine="1",model_name="m"} 0.75
# TYPE vllm:request_success_total counter
vllm:request_success_total{engine="0",finished_reason="stop",model_name="m"} 5.0
vllm:request_success_total{engine="1",finished_reason="stop",model_name="m"} 1.0
vllm:request_success_total{engine="1",finished_reason="abort",model_name="m"} 2.0
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{engine="0",le="1.0",model_name="m"} 1.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="m"} 2.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="m"} 2.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="m"} 2.5
vllm:time_to_first_token_seconds_bucket{engine="1",le="1.0",model_name="m"} 3.0
vllm:time_to_first_token_seconds_bucket{engine="1",le="+Inf",model_name="m"} 3.0
vllm:time_to_first_token_seconds_count{engine="1",model_name="m"} 3.0
vllm:time_to_first_token_seconds_sum{engine="1",model_name="m"} 1.5
`;
    const m = model(vllm(text), 'm');
    expect(m.engines).toEqual(['0', '1']);
    expect(m.requestsRunning).toBe(5);
    expect(m.requestsWaiting).toBeNull();
    expect(m.kvCacheUsage).toBe(0.75);
    expect(m.requestSuccessByReason).toEqual({ stop: 6, abort: 2 });
    expect(m.requestSuccessTotal).toBe(8);
    expect(m.timeToFirstToken).toMatchObject({ count: 5, sum: 4, buckets: [{ le: 1, count: 4 }, { le: Infinity, count: 5 }] });
  });

  it('info gauges without model_name make no model of their own', () => {
    const r = vllm(
      'vllm:lora_requests_info{max_lora="1",running_lora_adapters="",waiting_lora_adapters=""} 1.755178079975038e+09\n' +
        'vllm:cache_config_info{block_size="16"} 1.0\nvllm:num_requests_running{model_name="m"} 1.0\n',
    );
    expect(Object.keys(r.models)).toEqual(['m']);
  });

  it('keeps two models apart', () => {
    const r = vllm('vllm:prompt_tokens_total{model_name="a"} 10\nvllm:prompt_tokens_total{model_name="b"} 20\n');
    expect(model(r, 'a').promptTokensTotal).toBe(10);
    expect(model(r, 'b').promptTokensTotal).toBe(20);
    expect(r.family).toBe('unknown');
  });

  it('a histogram with only +Inf has a count but no quantile', () => {
    const text = `# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_bucket{le="+Inf",model_name="m"} 4.0
vllm:e2e_request_latency_seconds_count{model_name="m"} 4.0
vllm:e2e_request_latency_seconds_sum{model_name="m"} 10.0
`;
    const h = model(vllm(text), 'm').e2eRequestLatency!;
    expect(h).toMatchObject({ count: 4, sum: 10, p50: null, p90: null, p99: null });
  });

  it('cache_config_info "None" and odd values read as null', () => {
    const r = vllm('vllm:cache_config_info{block_size="None",gpu_memory_utilization="lots",num_gpu_blocks="None"} 1.0\n');
    expect(r.cacheConfig[0]).toMatchObject({ blockSize: null, gpuMemoryUtilization: null, numGpuBlocks: null, cacheDtype: null });
  });
});

describe('histogramQuantile', () => {
  const b = (pairs: Array<[number, number]>): Array<{ le: number; count: number }> => pairs.map(([le, count]) => ({ le, count }));

  it('interpolates inside the bucket that holds the rank, from 0 for the first', () => {
    expect(histogramQuantile(0.5, b([[1, 10], [2, 20], [Infinity, 20]]))).toBe(1);
    expect(histogramQuantile(0.25, b([[1, 10], [2, 20], [Infinity, 20]]))).toBe(0.5);
    expect(histogramQuantile(0.75, b([[1, 10], [2, 20], [Infinity, 20]]))).toBe(1.5);
  });

  it('gives the highest finite bound when the rank falls in +Inf', () => {
    expect(histogramQuantile(0.99, b([[1, 1], [2, 2], [Infinity, 10]]))).toBe(2);
  });

  it('has no answer without observations, without +Inf, with only +Inf, or for q outside 0..1', () => {
    expect(histogramQuantile(0.5, b([[1, 0], [Infinity, 0]]))).toBeNull();
    expect(histogramQuantile(0.5, b([[1, 3], [2, 4]]))).toBeNull();
    expect(histogramQuantile(0.5, b([[Infinity, 7]]))).toBeNull();
    expect(histogramQuantile(1.5, b([[1, 1], [Infinity, 1]]))).toBeNull();
    expect(histogramQuantile(Number.NaN, b([[1, 1], [Infinity, 1]]))).toBeNull();
  });

  it('does not depend on the order buckets come in', () => {
    expect(histogramQuantile(0.75, b([[Infinity, 20], [2, 20], [1, 10]]))).toBe(1.5);
  });
});
