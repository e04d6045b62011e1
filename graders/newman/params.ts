import { z } from 'zod';
import { AbsolutePath, ContainerRole, Port, Timeout, UrlPath } from '../params.js';

/** The grader's mutants of the business API (servers.py), each breaking one thing of the contract. */
export const STATUS_MUTANTS = ['auth-not-enforced', 'any-token-accepted', 'forbidden-for-401', 'server-error-for-422', 'ok-for-422'] as const;
export const BODY_MUTANTS = ['no-completion-tokens', 'too-many-tokens', 'wrong-model', 'empty-answer', 'no-error-field', 'wrong-error-field'] as const;
export const Mutant = z.enum([...STATUS_MUTANTS, ...BODY_MUTANTS]);
export type Mutant = z.infer<typeof Mutant>;

/**
 * Against the seat's live service, with the grader's environment (the seat's token from the
 * grader's root-only copy): the collection runs, every request is answered and asserted on, every
 * assertion passes, and its requests cover the contract: a health request answered 200, an
 * answer request with the right token answered 200, one with a wrong or no token answered 401,
 * one with the right token answered 422.
 */
const LiveSchema = z.strictObject({
  health: UrlPath.default('/health'),
  answer: UrlPath.default('/v1/answer'),
});

/**
 * Against the grader's own servers (no network, the same port, a fresh token per run): the
 * collection passes against `control` and fails (an assertion fails or a request errors) against
 * every listed mutant, the same verdict in each of `rounds` rounds.
 */
const VariantsSchema = z.strictObject({
  mutants: z.array(Mutant).min(1).refine((m) => new Set(m).size === m.length, { message: 'each mutant once' }),
  rounds: z.number().int().min(1).max(3).default(2),
});

export const NewmanParamsSchema = z
  .strictObject({
    kind: z.literal('newman'),
    container: ContainerRole.default('workspace'),
    /** The candidate's Postman collection (v2.1 JSON), copied into the toolbox; never run in the seat. */
    collection: AbsolutePath,
    /** The grader's copy of the seat's API token (root-only in the seat). */
    token: AbsolutePath,
    /** The environment's baseUrl, in every run (the seat's service and the grader's servers share it). */
    baseUrl: z.string().regex(/^http:\/\/127\.0\.0\.1:\d{1,5}$/, 'http://127.0.0.1:PORT').default('http://127.0.0.1:8000'),
    live: LiveSchema.optional(),
    variants: VariantsSchema.optional(),
    /** Largest collection read (bytes). */
    maxBytes: z.number().int().positive().max(4 * 1024 * 1024).default(1024 * 1024),
    requestTimeoutMs: Timeout.default(15_000),
    timeoutMs: Timeout.default(180_000),
  })
  .refine((p) => (p.live === undefined) !== (p.variants === undefined), { message: 'give exactly one of live, variants' });

export type NewmanParams = z.output<typeof NewmanParamsSchema>;

/** The port of a baseUrl (http://127.0.0.1:PORT). */
export function portOf(baseUrl: string): number {
  return Port.parse(Number(baseUrl.slice(baseUrl.lastIndexOf(':') + 1)));
}
