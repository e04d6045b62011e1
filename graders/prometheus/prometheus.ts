/**
 * `prometheus` probe: metrics the candidate exposes (an exposition endpoint, parsed strictly) or
 * collects (their Prometheus server, asked through its instant-query API), compared with
 * thresholds. Several matching series are summed, so `metric > 0` means "some traffic at all".
 */
import { z } from 'zod';
import { PrometheusParamsSchema } from './params.js';
import { isDeploylabError } from '../../runner/core/errors.js';
import { judge, type Assertion } from '../shared/assertions.js';
import { httpRequest, noResponseOutcome } from '../shared/http-request.js';
import { parseFloatStrict, parsePrometheusText } from '../parsers/prometheus.js';
import { boundSamples, defineProbe, failed, note, type Evidence, type MetricSample } from '../probe.js';

export type PrometheusParams = z.output<typeof PrometheusParamsSchema>;

/** Prometheus HTTP API, instant query (GET /api/v1/query): only vector and scalar results. */
const queryResponse = z.looseObject({
  status: z.literal('success'),
  data: z.discriminatedUnion('resultType', [
    z.looseObject({
      resultType: z.literal('vector'),
      result: z.array(z.looseObject({ metric: z.record(z.string(), z.string()), value: z.tuple([z.number(), z.string()]) })),
    }),
    z.looseObject({ resultType: z.literal('scalar'), result: z.tuple([z.number(), z.string()]) }),
  ]),
});

/** Samples from an instant-query answer; aggregations drop `__name__`, such series carry ''. */
export function querySamples(body: unknown): MetricSample[] {
  const r = queryResponse.parse(body);
  const num = (s: string): number => parseFloatStrict(s) ?? NaN;
  if (r.data.resultType === 'scalar') return [{ name: '', labels: {}, value: num(r.data.result[1]) }];
  return r.data.result.map((x) => {
    const { __name__: name = '', ...labels } = x.metric;
    return { name, labels, value: num(x.value[1]) };
  });
}

type Comparison = PrometheusParams['expect'][number];

export function compare(samples: MetricSample[], c: Comparison, nameless: boolean): Assertion {
  const hits = samples.filter(
    (s) => (s.name === c.metric || (nameless && s.name === '')) && Object.entries(c.labels ?? {}).every(([k, v]) => s.labels[k] === v),
  );
  const id = `${c.metric}${c.labels ? JSON.stringify(c.labels) : ''} ${c.op}${c.value !== undefined ? ` ${c.value}` : ''}`;
  if (c.op === 'exists') return { id, ok: hits.length > 0, expected: 'present', actual: hits.length > 0 ? `${hits.length} series` : '(absent)' };
  if (hits.length === 0) return { id, ok: false, expected: `${c.op} ${c.value}`, actual: '(absent)' };
  const sum = hits.reduce((a, s) => a + s.value, 0);
  const v = c.value!;
  const ok = { '>': sum > v, '>=': sum >= v, '<': sum < v, '<=': sum <= v, '==': sum === v }[c.op];
  return { id, ok, expected: `${c.op} ${v}`, actual: String(sum) };
}

export const prometheusProbe = defineProbe({
  kind: 'prometheus',
  params: PrometheusParamsSchema,
  async run(seat, p, deadline) {
    const src = p.source;
    const path = src.from === 'exposition' ? src.path : `/api/v1/query?query=${encodeURIComponent(src.query)}`;
    const attempt = await httpRequest(seat, { target: src.target, method: 'GET', path, headers: {}, timeoutMs: p.timeoutMs, readBytes: 8 * 1024 * 1024 }, deadline);
    const early = await noResponseOutcome(seat, attempt, p.timeoutMs);
    if (early || attempt.kind !== 'response') return early!;
    const x = attempt.exchange;
    const evidence: Evidence[] = [attempt.evidence];
    const what = src.from === 'exposition' ? { zh: `指标端点 ${src.path}`, en: `metrics endpoint ${src.path}` } : { zh: 'Prometheus 查询', en: 'Prometheus query' };
    if (x.status !== 200) return failed({ zh: `${what.zh}返回 HTTP ${x.status}`, en: `${what.en} answered HTTP ${x.status}` }, evidence);
    if (!x.complete) return failed({ zh: `${what.zh}的响应过大`, en: `${what.en}: response larger than the read limit` }, evidence);

    let samples: MetricSample[];
    try {
      if (src.from === 'exposition') {
        samples = [...parsePrometheusText(x.body.toString('utf8')).values()].flatMap((f) => f.samples.map((s) => ({ name: s.name, labels: s.labels, value: s.value })));
      } else {
        samples = querySamples(JSON.parse(x.body.toString('utf8')));
      }
    } catch (e) {
      const msg = isDeploylabError(e) ? e.message : e instanceof Error ? e.message : String(e);
      return failed({ zh: `${what.zh}的内容无法解析：${msg}`, en: `${what.en}: cannot parse the answer: ${msg}` }, [...evidence, note('解析失败', 'parse failure', { message: msg })]);
    }
    const wanted = new Set(p.expect.map((c) => c.metric));
    const shown = samples.filter((s) => wanted.has(s.name) || s.name === '');
    evidence.push(boundSamples(src.from === 'exposition' ? src.path : src.query, shown));
    const assertions = p.expect.map((c) => compare(samples, c, src.from === 'query'));
    return judge(assertions, 'all', what, evidence);
  },
});
