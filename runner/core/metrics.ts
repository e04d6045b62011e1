import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Every metric the harness exposes is declared here, once. */
export const registry = new Registry();

export const metrics = {
  imageBuildSeconds: new Histogram({
    name: 'deploylab_image_build_seconds',
    help: 'Wall time of one sandbox image build, by image and whether it was cached',
    labelNames: ['image', 'cached'] as const,
    buckets: [1, 5, 15, 60, 180, 600, 1800],
    registers: [registry],
  }),
  hostChecks: new Counter({
    name: 'deploylab_host_checks_total',
    help: 'Host readiness checks run, by item and status',
    labelNames: ['item', 'status'] as const,
    registers: [registry],
  }),
  engineErrors: new Counter({
    name: 'deploylab_engine_errors_total',
    help: 'Errors returned by the container engine, by operation',
    labelNames: ['operation'] as const,
    registers: [registry],
  }),
  seats: new Gauge({
    name: 'deploylab_seats',
    help: 'Seats known to the runner, by state',
    labelNames: ['state'] as const,
    registers: [registry],
  }),
  sandboxOpSeconds: new Histogram({
    name: 'deploylab_sandbox_operation_seconds',
    help: 'Duration of sandbox driver operations',
    labelNames: ['driver', 'operation'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  }),
};
