/**
 * Strict reader of the Prometheus text exposition format (0.0.4), as served by llama.cpp
 * (`--metrics`), vLLM, prometheus_client and prom-client. Strict because a grader must not guess:
 * a malformed line is an error with its line number, not a skipped sample.
 *
 * Written here rather than taken from npm: the parsers there are unmaintained and lenient
 * (they skip what they do not understand), and the grammar is small.
 */
import { DeploylabError } from '../../runner/core/errors.js';

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface PromSample {
  /** Full sample name, e.g. `http_request_duration_seconds_bucket`. */
  name: string;
  labels: Record<string, string>;
  value: number;
  /** Milliseconds since the epoch, when the exposition gave one. */
  timestampMs?: number;
}

export interface MetricFamily {
  name: string;
  type: MetricType;
  help?: string;
  samples: PromSample[];
}

export type Exposition = Map<string, MetricFamily>;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES: readonly MetricType[] = ['counter', 'gauge', 'histogram', 'summary', 'untyped'];

function bad(line: number | null, what: string): DeploylabError {
  const zhAt = line === null ? '' : `第 ${line} 行`;
  const enAt = line === null ? '' : ` at line ${line}`;
  return new DeploylabError({
    code: 'PROM_INVALID',
    fault: 'candidate',
    message: { zh: `Prometheus 指标文本${zhAt}无效：${what}`, en: `invalid Prometheus exposition${enAt}: ${what}` },
    details: { line },
  });
}

export function parseFloatStrict(s: string): number | null {
  if (s === 'NaN') return NaN;
  if (s === '+Inf' || s === 'Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) return null;
  return Number(s);
}

/** The family a sample belongs to: histogram/summary children fold into their base name. */
function familyOf(sample: string, families: Exposition): MetricFamily | undefined {
  const direct = families.get(sample);
  if (direct) return direct;
  for (const suffix of ['_bucket', '_sum', '_count', '_created']) {
    if (!sample.endsWith(suffix)) continue;
    const base = families.get(sample.slice(0, -suffix.length));
    if (!base) continue;
    if (base.type === 'histogram') return base;
    if (base.type === 'summary' && suffix !== '_bucket') return base;
  }
  return undefined;
}

function unescape(s: string, line: number, quoted: boolean): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const n = s[++i];
    if (n === 'n') out += '\n';
    else if (n === '\\') out += '\\';
    else if (n === '"' && quoted) out += '"';
    else if (quoted) throw bad(line, `unknown escape \\${n ?? ''}`);
    else out += '\\' + (n ?? ''); // HELP text keeps unknown escapes as written
  }
  return out;
}

/** Parse `{a="x",b="y"}` starting at `i` (the `{`); returns labels and the index after `}`. */
function parseLabels(text: string, i: number, line: number): [Record<string, string>, number] {
  const labels: Record<string, string> = {};
  i++; // {
  for (;;) {
    while (text[i] === ' ' || text[i] === '\t') i++;
    if (text[i] === '}') return [labels, i + 1];
    const m = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(text.slice(i));
    if (!m) throw bad(line, `label name expected at column ${i + 1}`);
    const name = m[0];
    i += name.length;
    while (text[i] === ' ' || text[i] === '\t') i++;
    if (text[i] !== '=') throw bad(line, `"=" expected after label ${name}`);
    i++;
    while (text[i] === ' ' || text[i] === '\t') i++;
    if (text[i] !== '"') throw bad(line, `quoted value expected for label ${name}`);
    let j = i + 1;
    while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
    if (j >= text.length) throw bad(line, `unterminated value of label ${name}`);
    if (Object.hasOwn(labels, name)) throw bad(line, `label ${name} repeated`);
    labels[name] = unescape(text.slice(i + 1, j), line, true);
    i = j + 1;
    while (text[i] === ' ' || text[i] === '\t') i++;
    if (text[i] === ',') i++;
    else if (text[i] !== '}') throw bad(line, `"," or "}" expected after label ${name}`);
  }
}

function labelKey(name: string, labels: Record<string, string>): string {
  return name + JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export function parsePrometheusText(text: string): Exposition {
  const families: Exposition = new Map();
  const seen = new Set<string>();
  const sampled = new Set<string>();
  const typed = new Set<string>();
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();

  lines.forEach((raw, idx) => {
    const line = idx + 1;
    const l = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (l.trim() === '') return;
    if (l.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(l);
      if (!m) return; // other comments (and OpenMetrics' "# EOF") carry nothing
      const [, kw, name, rest = ''] = m as unknown as [string, 'HELP' | 'TYPE', string, string | undefined];
      if (!NAME.test(name)) throw bad(line, `invalid metric name ${name}`);
      let fam = families.get(name);
      if (kw === 'TYPE') {
        const type = rest.trim() as MetricType;
        if (!TYPES.includes(type)) throw bad(line, `unknown metric type "${rest.trim()}"`);
        if (fam && fam.samples.length > 0) throw bad(line, `TYPE for ${name} after its samples`);
        if (typed.has(name)) throw bad(line, `second TYPE for ${name}`);
        if (sampled.has(name)) throw bad(line, `TYPE for ${name} after its samples`);
        fam ??= { name, type, samples: [] };
        fam.type = type;
        typed.add(name);
        families.set(name, fam);
      } else {
        fam ??= { name, type: 'untyped', samples: [] };
        if (fam.help !== undefined) throw bad(line, `second HELP for ${name}`);
        fam.help = unescape(rest, line, false);
        families.set(name, fam);
      }
      return;
    }

    const nm = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(l);
    if (!nm) throw bad(line, 'metric name expected');
    const name = nm[0];
    let i = name.length;
    let labels: Record<string, string> = {};
    if (l[i] === '{') [labels, i] = parseLabels(l, i, line);
    const rest = l.slice(i);
    if (!/^[ \t]/.test(rest)) throw bad(line, 'space expected before the value');
    const parts = rest.trim().split(/[ \t]+/);
    if (parts.length > 2) throw bad(line, `unexpected text after the value: ${parts.slice(2).join(' ')}`);
    const value = parseFloatStrict(parts[0]!);
    if (value === null) throw bad(line, `invalid value "${parts[0]}"`);
    const sample: PromSample = { name, labels, value };
    if (parts[1] !== undefined) {
      if (!/^-?\d+$/.test(parts[1])) throw bad(line, `invalid timestamp "${parts[1]}"`);
      sample.timestampMs = Number(parts[1]);
    }
    const key = labelKey(name, labels);
    if (seen.has(key)) throw bad(line, `duplicate sample ${name}${JSON.stringify(labels)}`);
    seen.add(key);

    let fam = familyOf(name, families);
    if (!fam) {
      fam = { name, type: 'untyped', samples: [] };
      families.set(name, fam);
    }
    if (fam.type === 'histogram' && name === `${fam.name}_bucket`) {
      const le = labels['le'];
      if (le === undefined) throw bad(line, `histogram bucket ${name} without le`);
      if (parseFloatStrict(le) === null) throw bad(line, `invalid le "${le}"`);
    }
    if (fam.type === 'summary' && name === fam.name) {
      const q = labels['quantile'];
      if (q === undefined || parseFloatStrict(q) === null) throw bad(line, `summary sample ${name} without a valid quantile`);
    }
    if ((fam.type === 'counter' || name.endsWith('_count') || name.endsWith('_bucket')) && value < 0) {
      throw bad(line, `${name} is negative (${value})`);
    }
    sampled.add(fam.name);
    fam.samples.push(sample);
  });

  for (const fam of families.values()) {
    if (fam.type === 'histogram') checkHistogram(fam);
  }
  return families;
}

/** Buckets are cumulative, end in +Inf, and +Inf equals _count, per label set. */
function checkHistogram(fam: MetricFamily): void {
  const series = new Map<string, { buckets: [number, number][]; count?: number }>();
  const keyOf = (labels: Record<string, string>): string => {
    const rest = { ...labels };
    delete rest['le'];
    return labelKey('', rest);
  };
  for (const s of fam.samples) {
    const k = keyOf(s.labels);
    const entry = series.get(k) ?? { buckets: [] };
    series.set(k, entry);
    if (s.name === `${fam.name}_bucket`) entry.buckets.push([parseFloatStrict(s.labels['le']!)!, s.value]);
    else if (s.name === `${fam.name}_count`) entry.count = s.value;
  }
  for (const [k, { buckets, count }] of series) {
    if (buckets.length === 0) continue;
    buckets.sort((a, b) => a[0] - b[0]);
    const last = buckets[buckets.length - 1]!;
    const where = `histogram ${fam.name}${k === '[]' ? '' : ' ' + k}`;
    if (last[0] !== Infinity) throw bad(null, `${where} has no +Inf bucket`);
    for (let i = 1; i < buckets.length; i++) {
      if (buckets[i]![1] < buckets[i - 1]![1]) throw bad(null, `${where} buckets are not cumulative`);
    }
    if (count !== undefined && count !== last[1]) throw bad(null, `${where}: +Inf bucket ${last[1]} differs from _count ${count}`);
  }
}

/** Samples named `name` whose labels include every pair in `match`. */
export function samples(exp: Exposition, name: string, match: Record<string, string> = {}): PromSample[] {
  const fam = familyOf(name, exp);
  if (!fam) return [];
  return fam.samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
}

/** Sum of the matching samples, or null when there is none (absent is not zero). */
export function sampleSum(exp: Exposition, name: string, match: Record<string, string> = {}): number | null {
  const found = samples(exp, name, match);
  return found.length === 0 ? null : found.reduce((a, s) => a + s.value, 0);
}

/** How much a counter moved between two scrapes; null when it is absent from either. */
export function counterDelta(
  before: Exposition,
  after: Exposition,
  name: string,
  match: Record<string, string> = {},
): number | null {
  const a = sampleSum(before, name, match);
  const b = sampleSum(after, name, match);
  return a === null || b === null ? null : b - a;
}

export function isValidMetricName(name: string): boolean {
  return NAME.test(name);
}

export function isValidLabelName(name: string): boolean {
  return LABEL_NAME.test(name);
}
