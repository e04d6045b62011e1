import { describe, expect, it } from 'vitest';
import { DeploylabError, type ErrorCode } from '../core/errors.js';
import { transient } from './provisioning.js';

const err = (code: ErrorCode, fault: DeploylabError['fault'] = 'infrastructure'): DeploylabError => new DeploylabError({ code, fault, message: { zh: '测试', en: 'test' } });

describe('which provisioning failures are retried', () => {
  it('an engine hiccup is retried; a seat profile the host lacks (a GPU task on a CPU host) or a missing image is not', () => {
    expect(transient(err('SANDBOX_ENGINE_ERROR'))).toBe(true);
    expect(transient(err('GRADING_PROFILE_UNAVAILABLE'))).toBe(false);
    expect(transient(err('SANDBOX_IMAGE_MISSING'))).toBe(false);
    expect(transient(err('SANDBOX_UNSUPPORTED'))).toBe(false);
  });

  it('a config or candidate fault is never retried, whatever its code', () => {
    expect(transient(err('SANDBOX_ENGINE_ERROR', 'config'))).toBe(false);
  });
});
