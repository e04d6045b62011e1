import { z } from 'zod';
import { ContainerRole, ProcessExpectSchema, ProcessMatchSchema, Regex, TargetSchema, Timeout, UrlPath } from '../params.js';

export const DisruptSchema = z.discriminatedUnion('action', [
  z.strictObject({
    action: z.literal('kill-process'),
    container: ContainerRole.default('workspace'),
    match: ProcessMatchSchema,
    signal: z.enum(['SIGKILL', 'SIGTERM', 'SIGINT']).default('SIGKILL'),
  }),
  z.strictObject({ action: z.literal('restart-container'), container: ContainerRole }),
  /**
   * A crash of a container in the seat's own daemon: its main process is killed from the host.
   * (`docker stop`/`docker kill` would count as a manual stop, which restart policies ignore.)
   */
  z.strictObject({
    action: z.literal('kill-inner-container'),
    match: z.strictObject({ name: Regex }),
    signal: z.enum(['SIGKILL', 'SIGTERM', 'SIGINT']).default('SIGKILL'),
  }),
]);

export const RecoveryParamsSchema = z.strictObject({
  kind: z.literal('recovery'),
  disrupt: DisruptSchema,
  /** After the disruption the service must answer like this again within `withinSeconds`. */
  then: z.strictObject({
    target: TargetSchema,
    path: UrlPath.default('/health'),
    status: z.number().int().min(100).max(599).default(200),
    withinSeconds: z.number().int().min(1).max(600),
    pollMs: z.number().int().min(100).max(10_000).default(1_000),
    /**
     * Who the service is, judged as a `process` check (match, expect: executable, opens,
     * listens…): it must pass before the disruption, its processes must be among those killed,
     * and it must pass again, on new processes, for the service to count as recovered (a stand-in
     * that takes the port when the real server dies is not a recovery).
     */
    identity: z
      .strictObject({
        container: ContainerRole.default('workspace'),
        match: ProcessMatchSchema,
        expect: ProcessExpectSchema,
      })
      .optional(),
    /**
     * The recovered processes (those `identity` matches, else those the kill matched) descend
     * from a process like this: the supervisor restarted them, not a loop of the candidate's own.
     */
    startedBy: z.strictObject({ match: ProcessMatchSchema, user: z.string().min(1).optional() }).optional(),
  }),
  timeoutMs: Timeout.default(180_000),
});
