import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { lazySandboxDriver } from '../sandbox/backend.js';
import { SessionService } from '../sessions/session-service.js';
import { openStore } from '../store/db.js';
import { main } from './main.js';

/** Every Docker driver built, counted where the composition root builds them. */
const built = vi.hoisted(() => ({ drivers: 0 }));
vi.mock('../sandbox/docker-driver.js', async (importOriginal) => {
  const m = await importOriginal<typeof import('../sandbox/docker-driver.js')>();
  return {
    ...m,
    dockerDriverFor: (...args: Parameters<typeof m.dockerDriverFor>) => {
      built.drivers++;
      return m.dockerDriverFor(...args);
    },
  };
});

async function runCli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const spyOut = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += chunk.toString();
    return true;
  });
  const spyErr = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    err += chunk.toString();
    return true;
  });
  try {
    const code = await main(['node', 'deploylab', ...args]);
    return { code, out, err };
  } finally {
    spyOut.mockRestore();
    spyErr.mockRestore();
    process.exitCode = undefined;
  }
}

/**
 * The store-only session commands with no engine to reach: the config points Docker at a socket
 * that does not exist, so any command that built an engine client and used it would fail.
 */
describe('session commands that only read the store, with the engine unreachable', () => {
  const dir = mkdtempSync(join(tmpdir(), 'deploylab-session-cli-'));
  const dataDir = join(dir, 'data');
  const configFile = join(dir, 'deploylab.yaml');
  const id = 'cli-ro-1';

  beforeAll(() => {
    writeFileSync(configFile, `dataDir: ${dataDir}\ndocker:\n  host: unix://${join(dir, 'no-engine.sock')}\n`);
    // A session in the store, opened without any engine: its driver is never built.
    const factory = vi.fn((): never => {
      throw new Error('no driver may be built to open a session');
    });
    const db = openStore(dataDir);
    const svc = new SessionService({ db, driver: lazySandboxDriver({ name: 'docker', sandboxesPerSession: 1013 }, factory), dataDir });
    svc.open({
      paperId: 'junior-v1',
      room: 'A101',
      id,
      roster: [
        { line: 1, candidateNo: 'T0001', name: '测试甲', idNumber: '11010519491231002X' },
        { line: 2, candidateNo: 'T0002', name: '测试乙', idNumber: '110105194912310038' },
      ],
      images: { workspaceCpu: 'deploylab/workspace-cpu:test', toolbox: null },
      baseUrl: 'http://127.0.0.1:8700/',
    });
    expect(factory).not.toHaveBeenCalled();
    db.close();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('session ls lists the session', async () => {
    const r = await runCli(['--config', configFile, '--json', 'session', 'ls']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.out) as { ok: boolean; sessions: { id: string; room: string }[] };
    expect(out.ok).toBe(true);
    expect(out.sessions.map((s) => [s.id, s.room])).toEqual([[id, 'A101']]);
    expect(built.drivers).toBe(0);
  });

  it('session show, codes and report read the seats', async () => {
    const show = await runCli(['--config', configFile, '--json', 'session', 'show', id]);
    expect(show.code).toBe(0);
    expect((JSON.parse(show.out) as { seats: { seat_id: string }[] }).seats.map((s) => s.seat_id)).toEqual(['s01', 's02']);
    const codes = await runCli(['--config', configFile, '--json', 'session', 'codes', id]);
    expect(codes.code).toBe(0);
    expect((JSON.parse(codes.out) as { seats: { hasCode: boolean }[] }).seats.map((s) => s.hasCode)).toEqual([true, true]);
    const report = await runCli(['--config', configFile, '--json', 'session', 'report', id]);
    expect(JSON.parse(report.out)).toMatchObject({ ok: true });
    expect(built.drivers).toBe(0);
  });

  it('a command that needs the engine says it cannot reach it (the config does point at none)', async () => {
    const r = await runCli(['--config', configFile, '--json', 'session', 'provision', id]);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.out)).toMatchObject({ ok: false, error: { code: 'ENGINE_UNREACHABLE' } });
    expect(built.drivers).toBe(1);
  });
});
