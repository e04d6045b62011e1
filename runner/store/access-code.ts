import { randomBytes, randomInt, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { DeploylabError } from '../core/errors.js';

/**
 * One-time seat access codes are stored only as scrypt hashes; the code itself exists on the
 * printed seat card and nowhere else.
 *
 * Why scrypt with one salt per session (not per seat, not a fast keyed hash):
 * - A code has about 40 bits. A fast hash (HMAC-SHA-256), even keyed, lets whoever copies the
 *   store file — key included — try every code in minutes on a GPU, well inside an exam. scrypt
 *   (16 MiB, ~50 ms a try) puts that search far beyond the hours a code is worth anything.
 * - The candidate types only the code, so the login cannot know the seat before hashing: a salt
 *   per seat would cost one scrypt per open seat on every attempt (a room logging in at once
 *   would queue for seconds). One salt per session costs one scrypt per open session per
 *   attempt, and still makes every session's hashes independent of every other's.
 * - Matching compares digests with timingSafeEqual.
 */

export const CodeKdfSchema = z.strictObject({
  alg: z.literal('scrypt'),
  N: z.number().int().min(1024),
  r: z.number().int().min(1),
  p: z.number().int().min(1),
  /** base64, 16 random bytes. */
  salt: z.string().min(16),
});
export type CodeKdf = z.output<typeof CodeKdfSchema>;

const KEY_BYTES = 32;
/** 2^14 × r 8 = 16 MiB of memory per hash (Node's default scrypt cap is 32 MiB). */
const DEFAULT_COST = { N: 16_384, r: 8, p: 1 } as const;
const maxmem = (k: CodeKdf): number => 128 * k.N * k.r * 2;

export function newCodeKdf(): CodeKdf {
  return { alg: 'scrypt', ...DEFAULT_COST, salt: randomBytes(16).toString('base64') };
}

/** The session's stored KDF, or null where the column is empty. A row that does not parse is STORE_CORRUPT. */
export function parseCodeKdf(text: string | null, source: string): CodeKdf | null {
  if (text === null) return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  const r = CodeKdfSchema.safeParse(value);
  if (!r.success) {
    throw new DeploylabError({
      code: 'STORE_CORRUPT',
      fault: 'bug',
      message: { zh: `${source} 的登录码参数无效`, en: `${source}: invalid access-code parameters` },
      details: { issues: r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) },
    });
  }
  return r.data;
}

const ACCESS_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';

/** 8 characters without look-alikes (0/O, 1/I): about 40 bits, typed from a printed card. */
export function newAccessCode(): string {
  let s = '';
  for (let i = 0; i < 8; i++) s += ACCESS_ALPHABET[randomInt(ACCESS_ALPHABET.length)];
  return s;
}

/** Codes are printed in upper case; people type them with spaces, dashes or in lower case. */
export function normaliseCode(code: string): string {
  return code.replace(/[\s-]/g, '').toUpperCase();
}

/** What a normalised code may look like at all; anything else is refused before hashing. */
export const CODE_SHAPE = /^[A-Z0-9]{4,32}$/;

/** Hex digest of a (normalised) code under a session's KDF; synchronous, for opening and migrating. */
export function hashCodeSync(code: string, kdf: CodeKdf): string {
  return scryptSync(normaliseCode(code), Buffer.from(kdf.salt, 'base64'), KEY_BYTES, { N: kdf.N, r: kdf.r, p: kdf.p, maxmem: maxmem(kdf) }).toString('hex');
}

/** The same digest off the event loop (the login path). */
export function hashCode(code: string, kdf: CodeKdf): Promise<string> {
  return new Promise((resolve, reject) => {
    scrypt(normaliseCode(code), Buffer.from(kdf.salt, 'base64'), KEY_BYTES, { N: kdf.N, r: kdf.r, p: kdf.p, maxmem: maxmem(kdf) }, (err, key) =>
      err ? reject(err) : resolve(key.toString('hex')),
    );
  });
}

/** Constant-time equality of two hex digests of the same length. */
export function digestsEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === KEY_BYTES && y.length === KEY_BYTES && timingSafeEqual(x, y);
}

/** `n` distinct fresh codes (distinct within a session, so their hashes are too). */
export function distinctCodes(n: number): string[] {
  const out = new Set<string>();
  while (out.size < n) out.add(newAccessCode());
  return [...out];
}
