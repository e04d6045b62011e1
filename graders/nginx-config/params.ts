import { z } from 'zod';
import { AbsolutePath, ContainerRole, Port, Timeout, UrlPath } from '../params.js';

/**
 * The configuration an nginx master process has in force, followed for one request. The master is
 * found from the host (its /proc/<pid>/exe has the content of the image's `executable`; it was
 * started with `-c config`); the harness reloads it (SIGHUP, as `nginx -s reload` does) and waits
 * for new worker processes, so the files it then reads, with their includes and `-g` directives,
 * are what nginx runs; a file nginx refuses to load fails. The request (the server the harness's
 * connection to `port` reaches, the location serving `path`) is followed as nginx does, and the
 * limit_req in force there (inherited from server and http levels) is judged.
 */
export const NginxConfigParamsSchema = z.strictObject({
  kind: z.literal('nginx-config'),
  container: ContainerRole.default('workspace'),
  master: z.strictObject({ executable: AbsolutePath, config: AbsolutePath }),
  request: z.strictObject({
    port: Port,
    method: z.enum(['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS']).default('GET'),
    /** Path with an optional query string. */
    path: UrlPath,
  }),
  expect: z.strictObject({
    /** One limit_req in force for the request uses a zone with one of these keys and this rate, and this burst. */
    limitReq: z.strictObject({
      keys: z.array(z.string().regex(/^\$[A-Za-z0-9_]+$/, 'a variable such as $binary_remote_addr')).min(1),
      /** "2r/s" or "120r/m" (the same rate to nginx). */
      rate: z.string().regex(/^[1-9]\d*r\/[sm]$/, 'a rate such as 2r/s'),
      burst: z.number().int().min(0).optional(),
      /** limit_req_status in force. */
      status: z.number().int().min(400).max(599).optional(),
    }),
  }),
  timeoutMs: Timeout.default(20_000),
});
