import { z } from 'zod';
import { Port, Timeout, UrlPath } from '../params.js';

/** A closed range of numbers with the control's documented default. */
const Field = z
  .strictObject({ min: z.number(), max: z.number(), default: z.number() })
  .refine((r) => r.min <= r.default && r.default <= r.max, { message: 'min ≤ default ≤ max' });

const TestId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'a data-testid: letters, digits, _ and -');

/** The `data-testid` of each control the page must have. */
const TestIdsSchema = z
  .strictObject({
    temperature: TestId.default('temperature'),
    topP: TestId.default('top-p'),
    maxTokens: TestId.default('max-tokens'),
    prompt: TestId.default('prompt'),
    send: TestId.default('send'),
    output: TestId.default('output'),
    error: TestId.default('error'),
  })
  .prefault({});

/** The allowed range and default of each sampling parameter. */
const FieldsSchema = z
  .strictObject({
    temperature: Field.default({ min: 0, max: 2, default: 0.7 }),
    topP: Field.default({ min: 0, max: 1, default: 0.9 }),
    maxTokens: Field.default({ min: 1, max: 256, default: 64 }),
  })
  .prefault({});

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 digest in lowercase hex');

/**
 * The aspect one check judges (one check per aspect):
 * - `vue`: a Vue 3 app made by createApp of the provided Vue build (byte-identical, loaded by a
 *   script of the page) is mounted, the controls are inside it and bound to its state both ways;
 * - `defaults`: the controls show the documented defaults;
 * - `request`: with the grader's own random values and prompt, one click sends one request to
 *   the model backend (directly or through a same-origin path) whose JSON carries exactly them,
 *   and what comes back is the backend's own answer to that body (the grader asks it again);
 * - `output`: the output area shows exactly that answer, round after round;
 * - `validation`: an out-of-range value sends nothing and shows a message in the error area.
 */
export const BROWSER_ASPECTS = ['vue', 'defaults', 'request', 'output', 'validation'] as const;

export const BrowserParamsSchema = z
  .strictObject({
    kind: z.literal('browser'),
    /** The page, on the seat's loopback (the grader's Chromium joins the seat's network namespace). */
    port: Port.default(8080),
    path: UrlPath.default('/'),
    aspect: z.enum(BROWSER_ASPECTS),
    testids: TestIdsSchema,
    fields: FieldsSchema,
    /** The model backend the page must call, on the seat's loopback, and its chat path. */
    backend: z.strictObject({ port: Port.default(8081), path: UrlPath.default('/v1/chat/completions') }).prefault({}),
    /** `vue`: the sha256 of each Vue 3 build accepted (the provided file's at least). */
    vueBuilds: z.array(Sha256).min(1).optional(),
    /** `request`, `output`: how many sends with fresh values and prompts. */
    rounds: z.number().int().min(1).max(5).default(2),
    /** max_tokens the grader picks for its rounds lie in this range (small: the answers come quickly). */
    roundMaxTokens: z.strictObject({ min: z.number().int().min(1), max: z.number().int().min(1) }).default({ min: 8, max: 32 }),
    timeoutMs: Timeout.default(90_000),
  })
  .refine((p) => p.aspect !== 'vue' || p.vueBuilds !== undefined, { message: 'aspect vue needs vueBuilds', path: ['vueBuilds'] })
  .refine((p) => p.roundMaxTokens.min <= p.roundMaxTokens.max && p.roundMaxTokens.min >= p.fields.maxTokens.min && p.roundMaxTokens.max <= p.fields.maxTokens.max, {
    message: 'roundMaxTokens within fields.maxTokens, min ≤ max',
    path: ['roundMaxTokens'],
  });

export type BrowserParams = z.output<typeof BrowserParamsSchema>;
export type BrowserAspect = (typeof BROWSER_ASPECTS)[number];
