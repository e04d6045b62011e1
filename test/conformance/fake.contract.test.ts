import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { DeploylabError } from '../../runner/core/errors.js';
import { parseSeatPlan, type SeatPlan, type SeatPlanInput } from '../../runner/sandbox/driver.js';
import { FakeDriver } from '../../runner/sandbox/fake-driver.js';
import { LABEL } from '../../runner/sandbox/labels.js';
import { readTar } from '../../runner/sandbox/tar.js';
import { runDriverContract } from './driver-contract.js';

/**
 * The in-memory driver against the contract's lifecycle half (no engine: never skipped), then what
 * is particular to it: its fault injection and the faithfulness the contract does not reach.
 */
const IMAGE = 'deploylab/workspace-cpu:contract';

const contractFake = new FakeDriver({ images: [IMAGE] });
runDriverContract({
  name: 'fake (in memory)',
  runsProcesses: false,
  makeDriver: () => contractFake,
  makeUnreachableDriver: () => new FakeDriver({ unreachable: true }),
  seatImage: async () => IMAGE,
  // Read from the fake's own map, not through list().
  leftovers: async (session) => contractFake.held(session).length,
});

async function codeOf(p: Promise<unknown>): Promise<DeploylabError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(DeploylabError);
  return e as DeploylabError;
}

describe('fake driver: what the contract does not cover', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'dl-fake-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const plan = (seat: string, extra: Partial<SeatPlanInput> = {}): SeatPlan =>
    parseSeatPlan({ session: 'fk', seat, task: 'demo', workspace: { image: IMAGE }, labels: { 'deploylab.candidate-seat': 's01' }, ...extra });

  it('is named fake, bounds a session like the Docker default, and refuses options that make no sense', () => {
    const d = new FakeDriver();
    expect(d.name).toBe('fake');
    expect(d.sandboxesPerSession).toBe(1013);
    expect(() => new FakeDriver({ sandboxesPerSession: 0 })).toThrow(/sandboxesPerSession/);
  });

  it('records the labels an engine object would carry, per container role', async () => {
    const d = new FakeDriver();
    const st = await d.provision(plan('a', { services: [{ name: 'db', image: IMAGE }], dockerInSeat: { enabled: true } }));
    expect(st.containers.map((c) => c.role)).toEqual(['workspace', 'dind', 'db']);
    const v = d.inspect({ session: 'fk', seat: 'a' })!;
    expect(v.labels.workspace).toMatchObject({ [LABEL.session]: 'fk', [LABEL.seat]: 'a', [LABEL.task]: 'demo', [LABEL.role]: 'workspace', 'deploylab.candidate-seat': 's01' });
    expect(v.labels.db![LABEL.role]).toBe('db');
    expect(d.inspect({ session: 'fk', seat: 'nope' })).toBeUndefined();
  });

  it('validates the plan with the seat-plan schema, even one that skipped parsing', async () => {
    const d = new FakeDriver();
    const bad = { ...plan('a'), seat: 'Not A Name' } as SeatPlan;
    expect((await codeOf(d.provision(bad))).code).toBe('SANDBOX_PLAN_INVALID');
    expect(d.held()).toEqual([]);
  });

  it('a second provision of the same seat is refused SANDBOX_SEAT_EXISTS and, as on the real engines, the seat stays', async () => {
    const d = new FakeDriver();
    await d.provision(plan('a'));
    const e = await codeOf(d.provision(plan('a')));
    expect([e.code, e.fault]).toEqual(['SANDBOX_SEAT_EXISTS', 'bug']);
    expect(d.held('fk')).toEqual([{ session: 'fk', seat: 'a' }]);
  });

  it('failProvision injects an error and leaves nothing behind; the next try may succeed', async () => {
    let calls = 0;
    const d = new FakeDriver({
      failProvision: () => (++calls === 1 ? new DeploylabError({ code: 'SANDBOX_ENGINE_ERROR', fault: 'infrastructure', message: { zh: '注入', en: 'injected' } }) : undefined),
    });
    expect((await codeOf(d.provision(plan('a')))).message).toBe('injected');
    expect(d.held()).toEqual([]);
    expect((await d.provision(plan('a'))).state).toBe('running');
    expect(calls).toBe(2);
  });

  it('more sandboxes than a session holds: the provision past the bound fails, typed', async () => {
    const d = new FakeDriver({ sandboxesPerSession: 2 });
    await d.provision(plan('a'));
    await d.provision(plan('b'));
    expect((await codeOf(d.provision(plan('c')))).code).toBe('SANDBOX_ENGINE_ERROR');
    // Another session has its own network.
    await d.provision(parseSeatPlan({ session: 'other', seat: 'c', task: 'demo', workspace: { image: IMAGE } }));
    expect(d.held().length).toBe(3);
  });

  it('an engine that goes away: every call fails typed until it is back', async () => {
    const d = new FakeDriver();
    const ref = { session: 'fk', seat: 'a' };
    await d.provision(plan('a'));
    d.unreachable = true;
    const calls = [() => d.status(ref), () => d.freeze(ref), () => d.readFile(ref, '/workspace'), () => d.list(), () => d.diskUsage(), () => d.destroy(ref), () => d.sweep()];
    for (const call of calls) expect((await codeOf(call())).code).toBe('SANDBOX_ENGINE_ERROR');
    expect(d.held()).toHaveLength(1);
    d.unreachable = false;
    expect((await d.status(ref)).state).toBe('running');
  });

  it('files: per container, parents made as root, reads capped or cut to a prefix, a directory is not a file', async () => {
    const d = new FakeDriver();
    const ref = { session: 'fk', seat: 'a' };
    await d.provision(plan('a', { services: [{ name: 'db', image: IMAGE }] }));
    await d.writeFiles(ref, [{ path: '/etc/db.conf', content: 'x=1\n', uid: 0, gid: 0 }], { container: 'db' });
    expect((await codeOf(d.readFile(ref, '/etc/db.conf'))).code).toBe('SANDBOX_FILE_NOT_FOUND');
    expect((await d.readFile(ref, '/etc/db.conf', { container: 'db' })).toString()).toBe('x=1\n');
    expect((await codeOf(d.readFile(ref, '/x', { container: 'nosuch' }))).code).toBe('SANDBOX_SEAT_NOT_FOUND');
    await d.writeFiles(ref, [{ path: '/workspace/m/model.gguf', content: Buffer.alloc(1000, 7) }]);
    const tree = await d.readTree(ref, '/workspace');
    expect(tree.map((e) => [e.path, e.type, e.uid])).toEqual([['.', 'directory', 1000], ['m', 'directory', 0], ['m/model.gguf', 'file', 1000]]);
    const [head] = await d.readTree(ref, '/workspace/m/model.gguf', { maxBytes: 10, prefix: true });
    expect([head!.path, head!.content!.length, head!.truncated, head!.size]).toEqual(['.', 10, true, 1000]);
    expect((await codeOf(d.readFile(ref, '/workspace/m/model.gguf', { maxBytes: 10 }))).code).toBe('SANDBOX_FILE_TOO_LARGE');
    expect((await codeOf(d.readFile(ref, '/workspace/m'))).code).toBe('SANDBOX_NOT_A_FILE');
    // A write that cannot land changes nothing (one archive extraction).
    const e = await codeOf(d.writeFiles(ref, [{ path: '/workspace/ok.txt', content: 'a' }, { path: '/workspace/m/model.gguf/inside', content: 'b' }]));
    expect(e.code).toBe('SANDBOX_ENGINE_ERROR');
    expect((await codeOf(d.readFile(ref, '/workspace/ok.txt'))).code).toBe('SANDBOX_FILE_NOT_FOUND');
    // What a caller holds is a copy: changing it does not change the seat.
    (await d.readFile(ref, '/etc/db.conf', { container: 'db' })).fill(0);
    expect((await d.readFile(ref, '/etc/db.conf', { container: 'db' })).toString()).toBe('x=1\n');
  });

  it('evidence of another path, and of an empty workspace, is a valid gzipped tar whose sha256 is the file', async () => {
    const d = new FakeDriver();
    const ref = { session: 'fk', seat: 'a' };
    await d.provision(plan('a'));
    const empty = await d.captureEvidence(ref, join(tmp, 'empty.tar.gz'));
    const entries = await readTar(Readable.from(gunzipSync(readFileSync(empty.file))), 1 << 20);
    expect(entries.map((x) => [x.path, x.type, x.uid])).toEqual([['workspace', 'directory', 1000]]);
    await d.writeFiles(ref, [{ path: '/srv/app/main.py', content: 'print(1)\n', mode: 0o755 }]);
    const ev = await d.captureEvidence(ref, join(tmp, 'srv.tar.gz'), { path: '/srv' });
    const bytes = readFileSync(ev.file);
    expect(ev.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    const files = (await readTar(Readable.from(gunzipSync(bytes)), 1 << 20)).filter((x) => x.type === 'file');
    expect(files.map((x) => [x.path, x.mode & 0o777, x.content!.toString()])).toEqual([['srv/app/main.py', 0o755, 'print(1)\n']]);
    expect((await codeOf(d.captureEvidence(ref, join(tmp, 'no-such-dir', 'x.tar.gz')))).code).toBe('SANDBOX_ENGINE_ERROR');
  });

  it('sweep by age: only seats created at least olderThanMs ago', async () => {
    let now = 1_000_000;
    const d = new FakeDriver({ now: () => now });
    await d.provision(plan('old'));
    now += 60_000;
    await d.provision(plan('new'));
    expect((await d.list({ olderThanMs: 30_000 })).map((s) => s.ref.seat)).toEqual(['old']);
    expect((await d.sweep({ olderThanMs: 30_000 })).map((x) => x.seat)).toEqual(['old']);
    expect(d.held().map((r) => r.seat)).toEqual(['new']);
  });
});
