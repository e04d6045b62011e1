import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { ExaminerGate } from './examiner-auth.js';

const TOKEN = 'e'.repeat(32);

/** The two fields the gate reads of a request. */
function req(authorization: string | undefined, ip = '127.0.0.1'): IncomingMessage {
  return { headers: authorization === undefined ? {} : { authorization }, socket: { remoteAddress: ip } } as unknown as IncomingMessage;
}

describe('ExaminerGate', () => {
  it('accepts the token, refuses others, and says when no bearer was given', () => {
    const g = new ExaminerGate(TOKEN);
    expect(g.bearer(req(`Bearer ${TOKEN}`)).kind).toBe('ok');
    expect(g.bearer(req(`Bearer ${TOKEN}x`)).kind).toBe('bad');
    expect(g.bearer(req(`Basic ${TOKEN}`)).kind).toBe('bad');
    expect(g.bearer(req(undefined)).kind).toBe('none');
    expect(new ExaminerGate(undefined).bearer(req(`Bearer ${TOKEN}`)).kind).toBe('none');
  });

  it('after max wrong tokens from an address refuses even the right one until the window ends; other addresses go on', () => {
    let t = 0;
    const g = new ExaminerGate(TOKEN, { max: 3, windowMs: 60_000, maxKeys: 100 }, () => t);
    expect([1, 2, 3].map(() => g.bearer(req('Bearer wrong')).kind)).toEqual(['bad', 'bad', 'bad']);
    t = 15_000;
    expect(g.bearer(req(`Bearer ${TOKEN}`))).toEqual({ kind: 'throttled', waitMs: 45_000 });
    expect(g.bearer(req('Bearer wrong'))).toEqual({ kind: 'throttled', waitMs: 45_000 });
    expect(g.bearer(req(`Bearer ${TOKEN}`, '10.0.0.9')).kind).toBe('ok');
    t = 60_000;
    expect(g.bearer(req(`Bearer ${TOKEN}`)).kind).toBe('ok');
  });

  it('right tokens do not use up the window', () => {
    const g = new ExaminerGate(TOKEN, { max: 2, windowMs: 60_000, maxKeys: 100 });
    for (let i = 0; i < 50; i++) expect(g.bearer(req(`Bearer ${TOKEN}`)).kind).toBe('ok');
  });
});
