import { describe, expect, it } from 'vitest';
import { Deadline, runProbe } from '../probe.js';
import { tempSeat } from '../__helpers__/temp-seat.js';
import {
  browserProbe,
  defaultsAssertions,
  graderRounds,
  ObservationSchema,
  outputAssertions,
  pickValue,
  replyContent,
  requestAssertions,
  validationAssertions,
  validationCases,
  vueAssertions,
  type Observation,
} from './browser.js';
import { BrowserParamsSchema, type BrowserParams } from './params.js';

const VUE_SHA = 'c459ba7cc8db65c982589fa5d64c7ff478877e8e5b0fd75683207cec6a4e89e8';
const VUE_URL = 'http://127.0.0.1:8080/vue.global.prod.js';
const params = (aspect: BrowserParams['aspect'], extra: object = {}): BrowserParams =>
  BrowserParamsSchema.parse({ kind: 'browser', aspect, vueBuilds: [VUE_SHA], ...extra });

const ALL_INSIDE = { temperature: true, topP: true, maxTokens: true, prompt: true, send: true, output: true, error: true };
const control = (value: string | null, found = 1) => ({ found, tag: 'input', type: 'number', value, text: '' });

function observation(over: Partial<Observation> = {}): Observation {
  return ObservationSchema.parse({
    ok: true,
    load: { ok: true, status: 200, rendered: true },
    scripts: [{ url: VUE_URL, status: 200, size: 157924, sha256: VUE_SHA, vueVersion: '3.5.13' }],
    vues: [{ src: VUE_URL, version: '3.5.13' }],
    apps: [{ src: VUE_URL, version: '3.5.13', mounted: true, dataVApp: true, ownApp: true, inside: ALL_INSIDE }],
    controls: {
      temperature: control('0.7'),
      topP: control('0.9'),
      maxTokens: control('64'),
      prompt: control(''),
      send: control(null),
      output: control(null),
      error: control(null),
    },
    reactivity: { app: true, typedAt: 'setupState.temperature', promptAt: 'setupState.prompt', wrote: true, shownAfterWrite: '0.42' },
    ...over,
  }) as Observation;
}

const failedIds = (as: { id: string; ok: boolean }[]): string[] => as.filter((a) => !a.ok).map((a) => a.id);

describe('vue', () => {
  it('passes a mounted app of the provided build bound both ways', () => {
    expect(failedIds(vueAssertions(observation(), [VUE_SHA], 0.42))).toEqual([]);
  });
  it('fails a Vue file with other bytes, and an app made by a Vue set from another script', () => {
    const other = observation({ scripts: [{ url: VUE_URL, status: 200, size: 10, sha256: 'ab'.repeat(32), vueVersion: '3.5.13' }] });
    expect(failedIds(vueAssertions(other, [VUE_SHA], 0.42))).toEqual(expect.arrayContaining(['vue-file', 'vue-global', 'app-mounted']));
    const fake = observation({
      vues: [{ src: VUE_URL, version: '3.5.13' }, { src: 'http://127.0.0.1:8080/app.js', version: '3.5.13' }],
      apps: [{ src: 'http://127.0.0.1:8080/app.js', version: '3.5.13', mounted: true, dataVApp: true, ownApp: true, inside: ALL_INSIDE }],
    });
    expect(failedIds(vueAssertions(fake, [VUE_SHA], 0.42))).toEqual(expect.arrayContaining(['app-mounted', 'controls-inside']));
  });
  it('fails a real app whose controls are not bound to its state', () => {
    const unbound = observation({ reactivity: { app: true, typedAt: null, promptAt: null, wrote: false, shownAfterWrite: '1.37' } });
    expect(failedIds(vueAssertions(unbound, [VUE_SHA], 0.42))).toEqual(['input-to-state', 'state-to-input', 'prompt-in-state']);
    const oneWay = observation({ reactivity: { app: true, typedAt: 'data.t', promptAt: 'data.p', wrote: true, shownAfterWrite: '1.37' } });
    expect(failedIds(vueAssertions(oneWay, [VUE_SHA], 0.42))).toEqual(['state-to-input']);
  });
  it('fails an app mounted beside the controls', () => {
    const beside = observation({ apps: [{ src: VUE_URL, version: '3.5.13', mounted: true, dataVApp: true, ownApp: true, inside: { ...ALL_INSIDE, send: false } }] });
    expect(failedIds(vueAssertions(beside, [VUE_SHA], 0.42))).toEqual(expect.arrayContaining(['app-mounted', 'controls-inside']));
  });
});

describe('defaults', () => {
  it('reads the documented defaults and one element per testid', () => {
    expect(failedIds(defaultsAssertions(observation(), params('defaults')))).toEqual([]);
    const o = observation();
    o.controls['temperature'] = control('1');
    o.controls['error'] = control(null, 0);
    o.controls['output'] = control(null, 2);
    expect(failedIds(defaultsAssertions(o, params('defaults')))).toEqual(['control:output', 'control:error', 'default:temperature']);
  });
  it('does not take an empty input for a zero default', () => {
    const p = params('defaults', { fields: { temperature: { min: 0, max: 2, default: 0 } } });
    const o = observation();
    o.controls['temperature'] = control('');
    expect(failedIds(defaultsAssertions(o, p))).toContain('default:temperature');
  });
});

const VALUES = { temperature: 1.23, topP: 0.45, maxTokens: 17, prompt: 'panel check 0123456789ab' };
const reply = (content: string): string => JSON.stringify({ choices: [{ message: { role: 'assistant', content } }] });
const body = (over: object = {}): string =>
  JSON.stringify({ messages: [{ role: 'user', content: VALUES.prompt }], temperature: 1.23, top_p: 0.45, max_tokens: 17, ...over });
function round(over: { url?: string; postData?: string; got?: string; replay?: string; shown?: string; requests?: number } = {}) {
  const q = { url: over.url ?? 'http://127.0.0.1:8081/v1/chat/completions', method: 'POST', postData: over.postData ?? body(), response: { status: 200, body: reply(over.got ?? 'abc def') }, failure: null };
  return {
    values: VALUES,
    requests: Array.from({ length: over.requests ?? 1 }, () => q),
    shown: over.shown ?? over.got ?? 'abc def',
    error: '',
    replay: { status: 200, body: reply(over.replay ?? over.got ?? 'abc def') },
  };
}

describe('request', () => {
  const p = params('request');
  it('passes one POST with exactly the grader’s numbers, answered by the backend', () => {
    expect(failedIds(requestAssertions(observation({ rounds: [round(), round({ url: 'http://localhost:8080/v1/chat/completions' })] }), p))).toEqual([]);
  });
  it('fails strings, other values, a missing prompt, two requests or another host', () => {
    const cases: [object, string][] = [
      [{ postData: body({ temperature: '1.23' }) }, 'round1:body'],
      [{ postData: body({ top_p: 0.9 }) }, 'round1:body'],
      [{ postData: body({ max_tokens: 64 }) }, 'round1:body'],
      [{ postData: body({ messages: [{ role: 'user', content: 'other' }] }) }, 'round1:body'],
      [{ postData: 'not json' }, 'round1:body'],
      [{ requests: 2 }, 'round1:one-request'],
      [{ requests: 0 }, 'round1:one-request'],
      [{ url: 'http://127.0.0.1:8082/v1/chat/completions' }, 'round1:target'],
    ];
    for (const [over, id] of cases) expect(failedIds(requestAssertions(observation({ rounds: [round(over)] }), p)), JSON.stringify(over)).toContain(id);
  });
  it('fails an answer that is not the backend’s own answer to that body', () => {
    expect(failedIds(requestAssertions(observation({ rounds: [round({ got: 'mine', replay: 'theirs' })] }), p))).toEqual(['round1:backend-answer']);
  });
  it('fails when no round ran', () => {
    expect(failedIds(requestAssertions(observation({ rounds: [] }), p))).toEqual(['rounds']);
  });
});

describe('output', () => {
  it('passes the answer shown exactly (surrounding whitespace aside)', () => {
    expect(failedIds(outputAssertions(observation({ rounds: [round({ got: ' a\nb ', shown: 'a\nb' }), round({ got: 'c' })] })))).toEqual([]);
  });
  it('fails a canned or replayed answer, and an empty one', () => {
    expect(failedIds(outputAssertions(observation({ rounds: [round(), round({ got: 'second', shown: 'abc def' })] })))).toEqual(['round2:shown']);
    expect(failedIds(outputAssertions(observation({ rounds: [round({ got: '', shown: '' })] })))).toEqual(['round1:shown']);
  });
  it('reads choices[0].message.content only', () => {
    expect(replyContent(reply('x'))).toBe('x');
    expect(replyContent('{"choices":[{"text":"x"}]}')).toBeUndefined();
    expect(replyContent('garbage')).toBeUndefined();
  });
});

describe('validation', () => {
  const p = params('validation');
  const vcase = (over: object) => ({ field: 'temperature', typed: 2.5, shown: '2.5', controlType: 'number', requests: [], error: 'temperature 超出范围', ...over });
  it('passes nothing sent with a message', () => {
    expect(failedIds(validationAssertions(observation({ cases: [vcase({})] as Observation['cases'] }), p))).toEqual([]);
  });
  it('fails a request sent, or no message', () => {
    const sent = vcase({ requests: [{ url: 'http://127.0.0.1:8081/v1/chat/completions', method: 'POST', postData: body({ temperature: 2.5 }) }] });
    expect(failedIds(validationAssertions(observation({ cases: [sent, vcase({ error: '  ' })] as Observation['cases'] }), p))).toEqual([
      'temperature=2.5:nothing-sent',
      'temperature=2.5:error-shown',
    ]);
  });
  it('lets a slider keep the value in range, but not a number input that changes it', () => {
    const slider = vcase({ controlType: 'range', shown: '2', error: '', requests: [{ url: 'u', method: 'POST', postData: body({ temperature: 2 }) }] });
    expect(failedIds(validationAssertions(observation({ cases: [slider] as Observation['cases'] }), p))).toEqual([]);
    const clampedNumber = vcase({ shown: '2', error: '', requests: [{ url: 'u', method: 'POST', postData: body({ temperature: 2 }) }] });
    expect(failedIds(validationAssertions(observation({ cases: [clampedNumber] as Observation['cases'] }), p))).toHaveLength(2);
  });
});

describe('the grader’s values', () => {
  it('draws values inside the ranges, never the defaults, different each round', () => {
    const p = params('request', { rounds: 3 });
    for (let i = 0; i < 50; i++) {
      const rs = graderRounds(p);
      expect(new Set(rs.map((r) => r.temperature)).size).toBe(3);
      for (const r of rs) {
        expect(r.temperature).toBeGreaterThan(0);
        expect(r.temperature).toBeLessThan(2);
        expect(r.temperature).not.toBe(0.7);
        expect(r.topP).not.toBe(0.9);
        expect(r.maxTokens).toBeGreaterThanOrEqual(8);
        expect(r.maxTokens).toBeLessThanOrEqual(32);
        expect(Math.round(r.temperature * 100) / 100).toBe(r.temperature);
      }
    }
    expect(pickValue({ min: 0, max: 1, default: 0.5 }, [0.3])).not.toBe(0.3);
  });
  it('tries values outside every range', () => {
    const p = params('validation');
    const cs = validationCases(p);
    expect(cs.find((c) => c.field === 'temperature' && c.value > 2)).toBeDefined();
    expect(cs.find((c) => c.field === 'temperature' && c.value < 0)).toBeDefined();
    expect(cs.find((c) => c.field === 'topP')!.value).toBeGreaterThan(1);
    expect(cs.find((c) => c.field === 'maxTokens')!.value).toBeGreaterThan(256);
  });
  it('needs vueBuilds for the vue aspect', () => {
    expect(BrowserParamsSchema.safeParse({ kind: 'browser', aspect: 'vue' }).success).toBe(false);
  });
});

describe('the probe', () => {
  it('reports a driver that gave no reading as an infrastructure error, never a fail', async () => {
    const seat = await tempSeat();
    try {
      Object.assign(seat, {
        runTrusted: async () => ({ exitCode: 2, stdout: '{"ok":false,"driverError":"chromium did not start"}\n', stderr: '', timedOut: false, durationMs: 5, where: 'test' }),
      });
      const o = await runProbe(browserProbe, seat, { kind: 'browser', aspect: 'defaults' }, Deadline.after(10_000));
      expect(o.status).toBe('error');
      expect(o.error?.code).toBe('BROWSER_DRIVER_FAILED');
      expect(o.error?.fault).toBe('infrastructure');
    } finally {
      await seat.cleanup();
    }
  });
  it('fails a page that does not load, once the harness’s own path is fine', async () => {
    const seat = await tempSeat();
    try {
      const stdout = JSON.stringify({ ok: true, load: { ok: false, status: null, error: 'page.goto: net::ERR_CONNECTION_REFUSED at http://127.0.0.1:8080/' }, scripts: [] });
      Object.assign(seat, { runTrusted: async () => ({ exitCode: 0, stdout, stderr: '', timedOut: false, durationMs: 5, where: 'test' }) });
      const o = await runProbe(browserProbe, seat, { kind: 'browser', aspect: 'defaults' }, Deadline.after(10_000));
      expect(o.status).toBe('fail');
      seat.breakPath(true);
      expect((await runProbe(browserProbe, seat, { kind: 'browser', aspect: 'defaults' }, Deadline.after(10_000))).status).toBe('error');
    } finally {
      await seat.cleanup();
    }
  });
});
