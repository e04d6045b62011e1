/**
 * A typed reading of a vLLM server's `/metrics` page (Prometheus text, read by the strict parser
 * in prometheus.ts). vLLM renamed and re-labelled its metrics between versions, so the reading
 * says which family of names it found, and every value that the page does not show is `null`:
 * a metric that is absent is unknown, not zero.
 *
 * Names by era (from real captures, see __fixtures__/vllm/README.md):
 * - V0 engine (≤ 0.7): `vllm:gpu_cache_usage_perc` beside `vllm:num_requests_swapped`,
 *   `vllm:cpu_cache_usage_perc`; labels `model_name` only.
 * - 0.8–0.9: `vllm:gpu_cache_usage_perc` without the swap/CPU gauges.
 * - 0.10 and later (V1): `vllm:kv_cache_usage_perc`, labels `engine` and `model_name`.
 *
 * The page is served by the candidate's process, so it can say anything: a grader takes it as
 * evidence only together with its own requests (counter deltas across them, counterDelta in
 * prometheus.ts) and its own identification of the process behind the port.
 */
import { z } from 'zod';
import { parseFloatStrict, parsePrometheusText, samples, type Exposition, type PromSample } from './prometheus.js';

export type VllmMetricsFamily = 'v0-legacy' | 'gpu-cache-usage' | 'kv-cache-usage' | 'unknown';

export interface HistogramBucket {
  /** Upper bound; Infinity for `+Inf`. */
  le: number;
  /** Cumulative count of observations ≤ le. */
  count: number;
}

export interface HistogramReading {
  count: number;
  sum: number | null;
  buckets: HistogramBucket[];
  /** Quantile estimates from the buckets (null when no finite bucket holds them). */
  p50: number | null;
  p90: number | null;
  p99: number | null;
}

export interface VllmModelReading {
  /** The `model_name` label; '' for series that carry none. */
  modelName: string;
  /** `engine` label values seen (data-parallel engines); empty before 0.10. */
  engines: string[];
  requestsRunning: number | null;
  requestsWaiting: number | null;
  promptTokensTotal: number | null;
  generationTokensTotal: number | null;
  /** Finished requests by `finished_reason` (stop, length, abort…). */
  requestSuccessByReason: Record<string, number> | null;
  requestSuccessTotal: number | null;
  /** Fraction 0..1 of KV-cache blocks in use; with several engines, the fullest one. */
  kvCacheUsage: number | null;
  kvCacheMetric: 'vllm:kv_cache_usage_perc' | 'vllm:gpu_cache_usage_perc' | null;
  timeToFirstToken: HistogramReading | null;
  e2eRequestLatency: HistogramReading | null;
}

export interface VllmCacheConfig {
  gpuMemoryUtilization: number | null;
  blockSize: number | null;
  numGpuBlocks: number | null;
  cacheDtype: string | null;
  enablePrefixCaching: boolean | null;
  /** The `model_name` / `engine` labels of this info series, when it has them. */
  modelName: string | null;
  engine: string | null;
  /** Every label as served, for what this reading does not name. */
  labels: Record<string, string>;
}

export type VllmMetricsReading =
  | {
      kind: 'vllm';
      family: VllmMetricsFamily;
      models: Record<string, VllmModelReading>;
      cacheConfig: VllmCacheConfig[];
    }
  | { kind: 'not-vllm'; server: 'llama.cpp' | 'unknown'; reason: string; names: string[] }
  | { kind: 'empty' };

const KV_NEW = 'vllm:kv_cache_usage_perc';
const KV_OLD = 'vllm:gpu_cache_usage_perc';
const V0_ONLY = ['vllm:num_requests_swapped', 'vllm:cpu_cache_usage_perc'];
const TTFT = 'vllm:time_to_first_token_seconds';
const E2E = 'vllm:e2e_request_latency_seconds';

/**
 * Quantile estimate from cumulative buckets, as Prometheus' histogram_quantile does it: linear
 * within the bucket that holds the rank, the first bucket starting at 0. A rank that falls in
 * the +Inf bucket gets the highest finite bound; with no finite bucket at all, or no
 * observations, there is no estimate (null).
 */
export function histogramQuantile(q: number, buckets: readonly HistogramBucket[]): number | null {
  if (!(q >= 0 && q <= 1)) return null;
  const sorted = [...buckets].sort((a, b) => a.le - b.le);
  const last = sorted[sorted.length - 1];
  if (!last || last.le !== Infinity) return null;
  const total = last.count;
  if (!(total > 0)) return null;
  const finite = sorted.filter((b) => b.le !== Infinity);
  if (finite.length === 0) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [idx, b] of finite.entries()) {
    if (b.count >= rank && b.count > prevCount) {
      // The first bucket starts at 0, unless its bound is not above 0 (then it is the answer).
      if (idx === 0 && b.le <= 0) return b.le;
      return prevLe + ((b.le - prevLe) * (rank - prevCount)) / (b.count - prevCount);
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return finite[finite.length - 1]!.le;
}

function declaredNames(exp: Exposition): string[] {
  const names = new Set<string>();
  for (const fam of exp.values()) {
    names.add(fam.name);
    for (const s of fam.samples) names.add(s.name);
  }
  return [...names].sort();
}

function familyOf(names: readonly string[]): VllmMetricsFamily {
  const has = (n: string): boolean => names.includes(n);
  if (has(KV_NEW)) return 'kv-cache-usage';
  if (has(KV_OLD)) return V0_ONLY.some(has) ? 'v0-legacy' : 'gpu-cache-usage';
  return V0_ONLY.some(has) ? 'v0-legacy' : 'unknown';
}

const modelOf = (s: PromSample): string => s.labels['model_name'] ?? '';

function byModel(exp: Exposition, name: string): Map<string, PromSample[]> {
  const out = new Map<string, PromSample[]>();
  for (const s of samples(exp, name)) {
    const list = out.get(modelOf(s)) ?? [];
    list.push(s);
    out.set(modelOf(s), list);
  }
  return out;
}

const sumOf = (list: readonly PromSample[] | undefined): number | null =>
  list && list.length > 0 ? list.reduce((a, s) => a + s.value, 0) : null;

function histogramFor(exp: Exposition, name: string, model: string): HistogramReading | null {
  const mine = (s: PromSample): boolean => modelOf(s) === model;
  const bucketSamples = samples(exp, `${name}_bucket`).filter(mine);
  if (bucketSamples.length === 0) return null;
  // Engines of one model are summed bucket by bucket; that is only sound when they share bounds.
  const perSeries = new Map<string, Set<number>>();
  const byLe = new Map<number, number>();
  for (const s of bucketSamples) {
    const le = parseFloatStrict(s.labels['le']!)!;
    const key = s.labels['engine'] ?? '';
    const set = perSeries.get(key) ?? new Set<number>();
    set.add(le);
    perSeries.set(key, set);
    byLe.set(le, (byLe.get(le) ?? 0) + s.value);
  }
  const bounds = [...perSeries.values()].map((set) => [...set].sort((a, b) => a - b).join(','));
  if (new Set(bounds).size > 1) return null;
  const buckets = [...byLe.entries()].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le);
  const inf = buckets[buckets.length - 1]!;
  const count = sumOf(samples(exp, `${name}_count`).filter(mine)) ?? inf.count;
  return {
    count,
    sum: sumOf(samples(exp, `${name}_sum`).filter(mine)),
    buckets,
    p50: histogramQuantile(0.5, buckets),
    p90: histogramQuantile(0.9, buckets),
    p99: histogramQuantile(0.99, buckets),
  };
}

/** Label values of the info gauge are Python reprs: '0.9', '16', 'None', 'True'. */
const pyNumber = z
  .string()
  .optional()
  .transform((s) => {
    if (s === undefined || s === 'None') return null;
    const n = parseFloatStrict(s);
    return n === null || !Number.isFinite(n) ? null : n;
  });
const pyBool = z
  .string()
  .optional()
  .transform((s) => (s === 'True' ? true : s === 'False' ? false : null));
const pyString = z
  .string()
  .optional()
  .transform((s) => (s === undefined || s === 'None' ? null : s));

const CacheConfigLabels = z.object({
  gpu_memory_utilization: pyNumber,
  block_size: pyNumber,
  num_gpu_blocks: pyNumber,
  cache_dtype: pyString,
  enable_prefix_caching: pyBool,
  model_name: z.string().optional(),
  engine: z.string().optional(),
});

function cacheConfigOf(s: PromSample): VllmCacheConfig {
  const l = CacheConfigLabels.parse(s.labels);
  return {
    gpuMemoryUtilization: l.gpu_memory_utilization,
    blockSize: l.block_size,
    numGpuBlocks: l.num_gpu_blocks,
    cacheDtype: l.cache_dtype,
    enablePrefixCaching: l.enable_prefix_caching,
    modelName: l.model_name ?? null,
    engine: l.engine ?? null,
    labels: { ...s.labels },
  };
}

/** Read a parsed exposition as vLLM's. */
export function readVllmExposition(exp: Exposition): VllmMetricsReading {
  const names = declaredNames(exp);
  const vllm = names.filter((n) => n.startsWith('vllm:'));
  const llama = names.filter((n) => n.startsWith('llamacpp:'));
  if (vllm.length === 0 || llama.length > 0) {
    const server = llama.length > 0 ? 'llama.cpp' : 'unknown';
    const reason =
      vllm.length > 0
        ? 'both vllm: and llamacpp: metrics are present; not one vLLM server'
        : llama.length > 0
          ? 'llama.cpp (llama-server) metrics, not vLLM'
          : 'no vllm: metric';
    return { kind: 'not-vllm', server, reason, names: names.slice(0, 20) };
  }
  const family = familyOf(vllm);
  const kvName = vllm.includes(KV_NEW) ? KV_NEW : vllm.includes(KV_OLD) ? KV_OLD : null;

  const running = byModel(exp, 'vllm:num_requests_running');
  const waiting = byModel(exp, 'vllm:num_requests_waiting');
  const prompt = byModel(exp, 'vllm:prompt_tokens_total');
  const generation = byModel(exp, 'vllm:generation_tokens_total');
  const success = byModel(exp, 'vllm:request_success_total');
  const kv = kvName ? byModel(exp, kvName) : new Map<string, PromSample[]>();

  const modelNames = new Set<string>();
  for (const name of vllm) {
    if (name.endsWith('_info')) continue; // info gauges (cache config, LoRA) are not per model
    for (const s of samples(exp, name)) modelNames.add(modelOf(s));
  }

  const models: Record<string, VllmModelReading> = {};
  for (const model of [...modelNames].sort()) {
    const engines = new Set<string>();
    for (const name of vllm) {
      for (const s of samples(exp, name)) if (modelOf(s) === model && s.labels['engine'] !== undefined) engines.add(s.labels['engine']);
    }
    const succ = success.get(model);
    let byReason: Record<string, number> | null = null;
    if (succ && succ.length > 0) {
      byReason = {};
      for (const s of succ) {
        const reason = s.labels['finished_reason'] ?? '';
        byReason[reason] = (byReason[reason] ?? 0) + s.value;
      }
    }
    const kvList = kv.get(model);
    models[model] = {
      modelName: model,
      engines: [...engines].sort(),
      requestsRunning: sumOf(running.get(model)),
      requestsWaiting: sumOf(waiting.get(model)),
      promptTokensTotal: sumOf(prompt.get(model)),
      generationTokensTotal: sumOf(generation.get(model)),
      requestSuccessByReason: byReason,
      requestSuccessTotal: sumOf(succ),
      kvCacheUsage: kvList && kvList.length > 0 ? Math.max(...kvList.map((s) => s.value)) : null,
      kvCacheMetric: kvList && kvList.length > 0 ? (kvName as VllmModelReading['kvCacheMetric']) : null,
      timeToFirstToken: histogramFor(exp, TTFT, model),
      e2eRequestLatency: histogramFor(exp, E2E, model),
    };
  }
  return { kind: 'vllm', family, models, cacheConfig: samples(exp, 'vllm:cache_config_info').map(cacheConfigOf) };
}

/**
 * Read `/metrics` text. Malformed text throws PROM_INVALID (from the strict parser); an empty
 * page and another server's page are results, not errors.
 */
export function parseVllmMetrics(text: string): VllmMetricsReading {
  if (text.trim() === '') return { kind: 'empty' };
  return readVllmExposition(parsePrometheusText(text));
}
