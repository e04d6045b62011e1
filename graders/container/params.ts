import { z } from 'zod';
import { AbsolutePath, ContainerRole, Port, Regex, Timeout } from '../params.js';

export const ContainerParamsSchema = z
  .strictObject({
  kind: z.literal('container'),
  /** "inner": containers of the seat's own Docker daemon (docker-in-seat tasks); "seat": the seat's containers. */
  scope: z.enum(['inner', 'seat']).default('inner'),
  /**
   * Judge an image of the seat's own daemon (scope inner) by its config instead of containers:
   * exposed ports, a non-root user, labels, and that it was built on a preloaded base image.
   */
  image: z
    .strictObject({
      ref: z.string().min(1),
      exposes: z.array(Port).optional(),
      /** Config.User must name a user other than root (empty, "root", "0" and "0:…" are root). */
      nonRootUser: z.boolean().optional(),
      labels: z.record(z.string(), z.string()).optional(),
      /** The image's layers start with this image's layers (built FROM it, not imported). */
      basedOn: z.string().min(1).optional(),
      /**
       * Built from this Dockerfile: the image's history beyond `basedOn` lists the instructions of
       * the file's final stage (and of the stages it is built FROM), in order.
       */
      builtFrom: z.strictObject({ dockerfile: AbsolutePath, container: ContainerRole.default('workspace') }).optional(),
      /** A COPY or ADD step beyond `basedOn` put files into the image (its layer is not empty). */
      addsFiles: z.boolean().optional(),
    })
    .refine((i) => (i.builtFrom === undefined && i.addsFiles === undefined) || i.basedOn !== undefined, {
      message: 'builtFrom and addsFiles judge the history beyond the base: give basedOn',
    })
    .optional(),
  match: z
    .strictObject({
      name: Regex.optional(),
      image: Regex.optional(),
      labels: z.record(z.string(), z.string()).optional(),
      composeService: z.string().min(1).optional(),
    })
    .refine((m) => Object.values(m).some((v) => v !== undefined), { message: 'give at least one matcher' })
    .optional(),
  expect: z
    .strictObject({
      running: z.boolean().default(true),
      count: z.strictObject({ min: z.number().int().min(0).default(1), max: z.number().int().min(1).optional() }).optional(),
      healthy: z.boolean().optional(),
      restartPolicy: z.enum(['no', 'always', 'unless-stopped', 'on-failure']).optional(),
      maxCpus: z.number().positive().optional(),
      maxMemoryMiB: z.number().int().positive().optional(),
      publishes: z.array(Port).optional(),
      /** Config.User of the containers is not root. */
      nonRootUser: z.boolean().optional(),
      /** The containers run their image's own ENTRYPOINT and CMD (compose did not override them). */
      imageCommand: z.boolean().optional(),
      /**
       * The healthcheck really tests the service: the harness stops (SIGSTOP, from the host) every
       * process of the container and runs the container's own healthcheck command in it, which
       * must not succeed within its timeout (at most 30 s); once the processes continue
       * (SIGCONT) it must succeed.
       */
      healthcheckFailsWhenStopped: z.boolean().optional(),
    })
    .prefault({}),
  timeoutMs: Timeout.default(20_000),
  })
  .refine((p) => (p.match === undefined) !== (p.image === undefined), { message: 'give match (containers) or image, exactly one' })
  .refine((p) => p.image === undefined || p.scope === 'inner', { message: 'image checks read the seat\'s own daemon: scope must be inner', path: ['scope'] });
