/**
 * The `prometheus` probe kind: metrics from an exposition endpoint or a Prometheus server the
 * candidate runs.
 */
import { defineKind } from '../probe-kind.js';
import { PrometheusParamsSchema } from './params.js';
import { prometheusProbe } from './prometheus.js';

export const prometheusKind = defineKind({
  kind: 'prometheus',
  params: PrometheusParamsSchema,
  probe: prometheusProbe,
  latencySensitive: false,
  needs: [],
});
