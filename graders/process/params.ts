import { z } from 'zod';
import { AbsolutePath, ContainerRole, Port, ProcessMatchSchema, Timeout } from '../params.js';

export const ProcessParamsSchema = z.strictObject({
  kind: z.literal('process'),
  container: ContainerRole.default('workspace'),
  match: ProcessMatchSchema,
  expect: z
    .strictObject({
      running: z.boolean().default(true),
      count: z.strictObject({ min: z.number().int().min(0).default(1), max: z.number().int().min(1).optional() }).optional(),
      user: z.string().min(1).optional(),
      /** Command-line options, any spelling of the flag: { flags: ["-t", "--threads"], equals: "2" }. */
      args: z.array(z.strictObject({ flags: z.array(z.string().regex(/^-{1,2}[A-Za-z0-9][\w-]*$/)).min(1), equals: z.string() })).optional(),
      /** The process listens on this TCP port. */
      listens: Port.optional(),
      /**
       * Identity: the executable the kernel runs for every matched process (/proc/<pid>/exe, seen
       * from the host) has the content of the file the seat's image ships at this path. argv[0],
       * the process name and the file's name prove nothing.
       */
      executable: AbsolutePath.optional(),
      /** Identity: every matched process has these files memory-mapped or open (a served model). */
      opens: z.array(AbsolutePath).min(1).optional(),
    })
    .prefault({}),
  timeoutMs: Timeout.default(10_000),
});
