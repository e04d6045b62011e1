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
  webLogins: new Counter({
    name: 'deploylab_web_logins_total',
    help: 'Candidate login attempts on the web page, by result (ok, bad_code, rate_limited)',
    labelNames: ['result'] as const,
    registers: [registry],
  }),
  webTerminalsOpen: new Gauge({
    name: 'deploylab_web_terminals_open',
    help: 'Browser terminals currently attached to seats',
    registers: [registry],
  }),
  sandboxOpSeconds: new Histogram({
    name: 'deploylab_sandbox_operation_seconds',
    help: 'Duration of sandbox driver operations',
    labelNames: ['driver', 'operation'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  }),
  gradingChecks: new Counter({
    name: 'deploylab_grading_checks_total',
    help: 'Checks graded, by probe kind and outcome (pass, partial, fail, blocked, error)',
    labelNames: ['kind', 'outcome'] as const,
    registers: [registry],
  }),
  verifyTaskSeconds: new Histogram({
    name: 'deploylab_verify_task_seconds',
    help: 'Wall time of `tasks verify` per task (untouched, solved and reset seat), by result',
    labelNames: ['result'] as const,
    buckets: [10, 30, 60, 120, 300, 600, 1200],
    registers: [registry],
  }),
  sessionTransitions: new Counter({
    name: 'deploylab_session_transitions_total',
    help: 'Session and seat state transitions stored, by kind (session, seat) and event',
    labelNames: ['kind', 'event'] as const,
    registers: [registry],
  }),
  seatProvisionSeconds: new Histogram({
    name: 'deploylab_seat_provision_seconds',
    help: 'Wall time to provision and set up one exam seat, by result',
    labelNames: ['result'] as const,
    buckets: [1, 2.5, 5, 10, 30, 60, 120, 300],
    registers: [registry],
  }),
};
