import type { ErrorCode } from './error-codes.js';

export type { ErrorCode } from './error-codes.js';

/**
 * One error type for the whole harness. `code` is stable (tests, logs and the API match on it)
 * and listed in ERROR_CODES (error-codes.ts); `fault` says who must act: the candidate, whoever
 * wrote the config/task/roster, the operator of the infrastructure, or us (a bug).
 */
export type Fault = 'candidate' | 'config' | 'infrastructure' | 'bug';

export interface Bilingual {
  zh: string;
  en: string;
}

export class DeploylabError extends Error {
  readonly code: ErrorCode;
  readonly fault: Fault;
  readonly zh: string;
  /** What to do about it, both languages. */
  readonly hint: Bilingual | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(opts: {
    code: ErrorCode;
    fault: Fault;
    message: Bilingual;
    hint?: Bilingual;
    details?: Record<string, unknown>;
    cause?: unknown;
  }) {
    super(opts.message.en, { cause: opts.cause });
    this.name = 'DeploylabError';
    this.code = opts.code;
    this.fault = opts.fault;
    this.zh = opts.message.zh;
    this.hint = opts.hint;
    this.details = opts.details;
  }

  text(lang: Lang): string {
    const msg = lang === 'zh' ? `${this.zh} (${this.message})` : this.message;
    const hint = this.hint ? (lang === 'zh' ? `${this.hint.zh} (${this.hint.en})` : this.hint.en) : '';
    return hint ? `${msg}\n  → ${hint}` : msg;
  }

  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      fault: this.fault,
      message: { zh: this.zh, en: this.message },
      hint: this.hint,
      details: this.details,
    };
  }
}

export type Lang = 'zh' | 'en';

export function isDeploylabError(e: unknown): e is DeploylabError {
  return e instanceof DeploylabError;
}

/** Wrap anything thrown into a DeploylabError; unknown throwables are bugs. */
export function asDeploylabError(e: unknown): DeploylabError {
  if (e instanceof DeploylabError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new DeploylabError({
    code: 'INTERNAL',
    fault: 'bug',
    message: { zh: `内部错误：${message}`, en: `internal error: ${message}` },
    cause: e,
  });
}
