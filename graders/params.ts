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

/**
 * What a `process` check expects of the processes its `match` selects. `recovery` judges a
 * service's identity as a `process` check, so its `then.identity.expect` is this too.
 */
export const ProcessExpectSchema = z
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
  .prefault({});
