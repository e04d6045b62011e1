import { z } from 'zod';

/**
 * The building blocks of the probe kinds' parameters (each kind's strict schema is in its own
 * folder, `<kind>/params.ts`; kinds.ts joins them into the union the task schema uses). A probe
 * and the task files share one schema per kind, so they always agree on what a check may say.
 */

/** A seat container by role ("workspace", "docker", a sidecar name). */
export const ContainerRole = z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, 'a container role: lowercase letters, digits, -');
export const AbsolutePath = z.string().regex(/^\/[^\0]*$/, 'an absolute path inside the seat');
export const UrlPath = z.string().regex(/^\/[^\s]*$/, 'an URL path starting with /');
export const Port = z.number().int().min(1).max(65535);
/** Octal permission bits as text, e.g. "0644". */
export const FileMode = z.string().regex(/^0?[0-7]{3,4}$/, 'octal mode such as "0644"');
/** A JavaScript regular expression, as text. */
export const Regex = z.string().refine(
  (s) => {
    try {
      new RegExp(s);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'not a valid regular expression' },
);
/** A check's own allowance in milliseconds. */
export const Timeout = z.number().int().positive().max(600_000);

/** Where a network probe connects: a port of one of the seat's containers, from the harness side. */
export const TargetSchema = z.strictObject({
  container: ContainerRole.default('workspace'),
  port: Port,
  scheme: z.enum(['http', 'https']).default('http'),
});

export const ProcessMatchSchema = z
  .strictObject({
    /**
     * Basename of argv[0], e.g. "llama-server": it selects the processes to judge, it proves
     * nothing about them (see `expect.executable`).
     */
    exe: z.string().min(1).optional(),
    /** Regular expression over the full command line. */
    commandMatches: Regex.optional(),
  })
  .refine((m) => m.exe !== undefined || m.commandMatches !== undefined, { message: 'give exe or commandMatches' });
