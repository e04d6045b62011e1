import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { DockerDriver } from '../../runner/sandbox/docker-driver.js';
import { SeatDirectory } from '../../runner/sessions/seat-directory.js';
import { SessionService } from '../../runner/sessions/session-service.js';
import { hashCodeSync, parseCodeKdf } from '../../runner/store/access-code.js';
import { MIGRATIONS, openStore, type DB } from '../../runner/store/db.js';
import { cli, MINI_PAPER, miniTasksRoot, ROSTER } from './helpers.js';

/**
 * One-time access codes are stored only as scrypt hashes: opening prints them once (result and
 * seat cards), login compares hashes, a reissue replaces them, and a store made before hashing
 * is migrated without leaving the old codes in the file. No engine: nothing here provisions.
 */
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tasksRoot = miniTasksRoot();
dirs.push(tasksRoot);

function service(): { svc: SessionService; dataDir: string } {
  const dataDir = mkdtempSync(join(tmpdir(), 'dl-codes-'));
  dirs.push(dataDir);
  return { svc: new SessionService({ db: openStore(dataDir), driver: new DockerDriver(), dataDir }), dataDir };
}

const IMAGES = { workspaceCpu: 'deploylab/workspace-cpu:test', toolbox: null };
const open = (svc: SessionService, id: string, roster = ROSTER): ReturnType<SessionService['open']> =>
  svc.open({ id, paperId: MINI_PAPER, tasksRoot, room: 'C1', roster, images: IMAGES, baseUrl: 'http://127.0.0.1:8700/' });

/** What provisioning leaves behind for the login to care about: the seat is ready. */
const markReady = (db: DB, id: string): void => void db.prepare("UPDATE seats SET state = 'ready' WHERE session_id = ?").run(id);

/** Every byte the store has on disk: the database file and its write-ahead log. */
function storeBytes(dataDir: string): Buffer {
  const f = join(dataDir, 'deploylab.sqlite');
  return Buffer.concat([f, `${f}-wal`, `${f}-journal`].filter(existsSync).map((p) => readFileSync(p)));
}

describe('seat access codes', () => {
  it('are returned and printed once at open, stored only as salted scrypt hashes, and redeem once', async () => {
    const { svc, dataDir } = service();
    const { codes, cards, seats } = open(svc, 'codes-a');
    expect(Object.keys(codes)).toEqual(['s01', 's02']);
    for (const c of Object.values(codes)) expect(c).toMatch(/^[A-HJ-NP-Z2-9]{8}$/);
    expect(codes['s01']).not.toBe(codes['s02']);
    for (const s of seats) expect(s.access_code_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(Object.keys(seats[0]!)).not.toContain('access_code');

    // The cards carry the codes (examiners hand them out), readable by their owner only.
    const html = readFileSync(cards.html, 'utf8');
    const csv = readFileSync(cards.csv, 'utf8');
    for (const [seat, code] of Object.entries(codes)) {
      expect(html).toContain(code);
      expect(csv).toMatch(new RegExp(`^${seat},.*,${code}\\r$`, 'm'));
    }
    expect(statSync(cards.html).mode & 0o077).toBe(0);
    expect(statSync(cards.csv).mode & 0o077).toBe(0);

    // The store never holds a code: not in a row, not in the file, not in the log.
    svc.db.pragma('wal_checkpoint(PASSIVE)');
    const bytes = storeBytes(dataDir);
    for (const c of Object.values(codes)) expect(bytes.includes(Buffer.from(c)), c).toBe(false);
    const kdf = parseCodeKdf(svc.session('codes-a').code_kdf, 'test')!;
    expect(kdf).toMatchObject({ alg: 'scrypt', N: 16384, r: 8, p: 1 });
    expect(svc.seat('codes-a', 's01').access_code_hash).toBe(hashCodeSync(codes['s01']!, kdf));

    const dir = new SeatDirectory(svc.db);
    // Not provisioned yet: no login.
    expect(await dir.redeemAccessCode(codes['s01']!)).toBeNull();
    markReady(svc.db, 'codes-a');
    expect(await dir.redeemAccessCode('ZZZZZZZZ')).toBeNull();
    expect(await dir.redeemAccessCode('<script>')).toBeNull();
    // Typed as people type: lower case, a dash, a space.
    const typed = `${codes['s01']!.slice(0, 4)}-${codes['s01']!.slice(4)} `.toLowerCase();
    const seat = await dir.redeemAccessCode(typed);
    expect(seat).toMatchObject({ sessionId: 'codes-a', seatId: 's01', candidateNo: 'T0001' });
    expect(await dir.redeemAccessCode(codes['s01']!)).toBeNull();
    // Two browsers racing with one code: exactly one gets in.
    const race = await Promise.all([dir.redeemAccessCode(codes['s02']!), dir.redeemAccessCode(codes['s02']!)]);
    expect(race.filter((x) => x !== null).map((x) => x!.seatId)).toEqual(['s02']);
  });

  it('a reissue makes new codes and new cards; the old code and the seat’s browser sessions stop working', async () => {
    const { svc } = service();
    const first = open(svc, 'codes-b');
    markReady(svc.db, 'codes-b');
    const dir = new SeatDirectory(svc.db);
    const seat = await dir.redeemAccessCode(first.codes['s01']!);
    const token = dir.bindSeatSession(seat!.ref);
    expect(dir.seatForCookie(token)?.seatId).toBe('s01');

    // Every unused code: s02 only; the candidate at s01 keeps working.
    const all = svc.reissueCodes('codes-b');
    expect(Object.keys(all.codes)).toEqual(['s02']);
    expect(all.codes['s02']).not.toBe(first.codes['s02']);
    expect(all.cards.html).toBe(first.cards.html);
    expect(readFileSync(all.cards.html, 'utf8')).toContain(all.codes['s02']);
    expect(readFileSync(all.cards.html, 'utf8')).not.toContain(first.codes['s02']);
    expect(dir.seatForCookie(token)?.seatId).toBe('s01');
    expect(await dir.redeemAccessCode(first.codes['s02']!)).toBeNull();
    expect((await dir.redeemAccessCode(all.codes['s02']!))?.seatId).toBe('s02');
    expect(() => svc.reissueCodes('codes-b')).toThrow(expect.objectContaining({ code: 'SESSION_NO_CODES_TO_REISSUE' }));

    // One seat (a cleared browser): its own card beside the others; the logged-in browser is out.
    const one = svc.reissueCodes('codes-b', { seat: 's01' });
    expect(Object.keys(one.codes)).toEqual(['s01']);
    expect(one.cards.html).toMatch(/seat-cards-s01-.*\.html$/);
    expect(readFileSync(one.cards.csv, 'utf8')).toContain(one.codes['s01']);
    expect(dir.seatForCookie(token)).toBeNull();
    expect((await dir.redeemAccessCode(one.codes['s01']!))?.seatId).toBe('s01');
    const events = svc.db.prepare("SELECT seat_id, event, from_state, to_state FROM transitions WHERE session_id = 'codes-b' AND event = 'code-reissued' ORDER BY seq").all();
    expect(events).toEqual([
      { seat_id: 's02', event: 'code-reissued', from_state: 'ready', to_state: 'ready' },
      { seat_id: 's01', event: 'code-reissued', from_state: 'ready', to_state: 'ready' },
    ]);
    expect(() => svc.reissueCodes('codes-b', { seat: 's09' })).toThrow(expect.objectContaining({ code: 'SEAT_NOT_FOUND' }));
  });

  it('a code that would open seats of two sessions opens neither', async () => {
    const { svc } = service();
    const a = open(svc, 'codes-c');
    open(svc, 'codes-d');
    markReady(svc.db, 'codes-c');
    markReady(svc.db, 'codes-d');
    // 40-bit codes collide across sessions about never; make one collide to see what login does.
    const kdf = parseCodeKdf(svc.session('codes-d').code_kdf, 'test')!;
    svc.db.prepare("UPDATE seats SET access_code_hash = ? WHERE session_id = 'codes-d' AND seat_id = 's02'").run(hashCodeSync(a.codes['s01']!, kdf));
    const dir = new SeatDirectory(svc.db);
    expect(await dir.redeemAccessCode(a.codes['s01']!)).toBeNull();
    expect((await dir.redeemAccessCode(a.codes['s02']!))?.sessionId).toBe('codes-c');
  });

  it('`session codes ID --reissue --seat S` prints the new code once and writes its card', async () => {
    const { svc, dataDir } = service();
    const first = open(svc, 'codes-e');
    markReady(svc.db, 'codes-e');
    const r = await cli(dataDir, ['--json', 'session', 'codes', 'codes-e', '--reissue', '--seat', 's02']).done;
    expect(r.code, r.out).toBe(0);
    const out = JSON.parse(r.out.slice(r.out.indexOf('{'))) as { codes: Record<string, string>; cards: { html: string } };
    expect(Object.keys(out.codes)).toEqual(['s02']);
    expect(readFileSync(out.cards.html, 'utf8')).toContain(out.codes['s02']);
    const dir = new SeatDirectory(svc.db);
    expect(await dir.redeemAccessCode(first.codes['s02']!)).toBeNull();
    expect((await dir.redeemAccessCode(out.codes['s02']!))?.seatId).toBe('s02');
    // Without --reissue: which codes are used, never a code.
    const list = await cli(dataDir, ['--json', 'session', 'codes', 'codes-e']).done;
    expect(list.code, list.out).toBe(0);
    const seats = (JSON.parse(list.out.slice(list.out.indexOf('{'))) as { seats: { seat: string; redeemedAt: string | null; hasCode: boolean }[] }).seats;
    expect(seats.map((s) => [s.seat, s.hasCode, s.redeemedAt !== null])).toEqual([
      ['s01', true, false],
      ['s02', true, true],
    ]);
    expect(list.out).not.toContain(first.codes['s01']);
  }, 120_000);
});

describe('store migration 2: plaintext codes to hashes', () => {
  it('hashes the codes that can still log in, drops the dead ones, and leaves no plaintext in the file', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'dl-codes-mig-'));
    dirs.push(dataDir);
    // A store as the previous release made it: schema 1, codes in the clear.
    const old = new Database(join(dataDir, 'deploylab.sqlite'));
    old.pragma('journal_mode = WAL');
    old.exec(MIGRATIONS[0] as string);
    old.pragma('user_version = 1');
    const spec = JSON.stringify({ paperId: MINI_PAPER, tasks: ['quantize', 'serve', 'api', 'incident'], tasksRoot, workspaceImage: 'w', toolboxImage: null, baseUrl: 'http://127.0.0.1:8700/', gpuBaselineMiB: null });
    old.prepare("INSERT INTO sessions VALUES ('old-1', ?, 'junior', 'A1', 'running', 5400000, 0, '2025-01-01T00:00:00Z', ?)").run(MINI_PAPER, spec);
    old.prepare("INSERT INTO sessions VALUES ('old-2', ?, 'junior', 'A2', 'reset', 5400000, 0, '2025-01-01T00:00:00Z', ?)").run(MINI_PAPER, spec);
    const seat = old.prepare('INSERT INTO seats (session_id, seat_id, ordinal, candidate_no, name, id_number, state, access_code, code_redeemed_at, allowed_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    seat.run('old-1', 's01', 1, 'T1', '甲', 'X0001', 'running', 'LIVEAAAA', null, 5400000);
    seat.run('old-1', 's02', 2, 'T2', '乙', 'X0002', 'running', 'USEDBBBB', '2025-01-01T00:01:00Z', 5400000);
    seat.run('old-1', 's03', 3, 'T3', '丙', 'X0003', 'pending', 'PENDCCCC', null, 5400000);
    seat.run('old-2', 's01', 1, 'T4', '丁', 'X0004', 'removed', 'GONEDDDD', null, 5400000);
    old.prepare("INSERT INTO seat_tokens VALUES ('abc', 'old-1', 's02', 'then', NULL)").run();
    old.close();
    const plain = ['LIVEAAAA', 'USEDBBBB', 'PENDCCCC', 'GONEDDDD'];
    expect(plain.every((c) => storeBytes(dataDir).includes(Buffer.from(c)))).toBe(true);

    const db = openStore(dataDir);
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    const cols = (db.prepare('PRAGMA table_info(seats)').all() as { name: string }[]).map((c) => c.name);
    expect(cols).not.toContain('access_code');
    expect(cols).toContain('access_code_hash');
    const rows = db.prepare('SELECT session_id, seat_id, state, access_code_hash, code_redeemed_at FROM seats ORDER BY session_id, seat_id').all() as {
      session_id: string; seat_id: string; state: string; access_code_hash: string | null; code_redeemed_at: string | null;
    }[];
    expect(rows.map((r) => [r.session_id, r.seat_id, r.state, r.access_code_hash === null ? null : 'hash', r.code_redeemed_at])).toEqual([
      ['old-1', 's01', 'running', 'hash', null],
      ['old-1', 's02', 'running', null, '2025-01-01T00:01:00Z'],
      ['old-1', 's03', 'pending', 'hash', null],
      ['old-2', 's01', 'removed', null, null],
    ]);
    // Other tables and the ledger are untouched.
    expect(db.prepare('SELECT count(*) n FROM seat_tokens').get()).toEqual({ n: 1 });
    for (const c of plain) expect(storeBytes(dataDir).includes(Buffer.from(c)), c).toBe(false);

    // The live code still logs in, once; the used one does not.
    const dir = new SeatDirectory(db);
    expect(await dir.redeemAccessCode('USEDBBBB')).toBeNull();
    expect((await dir.redeemAccessCode('liveaaaa'))?.seatId).toBe('s01');
    expect(await dir.redeemAccessCode('LIVEAAAA')).toBeNull();
    // The pending seat's code works once the seat is provisioned.
    db.prepare("UPDATE seats SET state = 'ready' WHERE session_id = 'old-1' AND seat_id = 's03'").run();
    expect((await dir.redeemAccessCode('PENDCCCC'))?.seatId).toBe('s03');
    db.close();
    // Opening again applies nothing more.
    const again = openStore(dataDir);
    expect(again.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    again.close();
  });

  it('a roster the session network cannot hold is refused before any code is hashed or any row written', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'dl-capacity-'));
    dirs.push(dataDir);
    // A /27 holds 32 − 3 − 8 = 21 sandboxes: 30 candidates of any paper do not fit.
    const svc = new SessionService({ db: openStore(dataDir), driver: new DockerDriver({ subnetPrefix: 27 }), dataDir });
    const roster = Array.from({ length: 30 }, (_, i) => ({ ...ROSTER[i % 2]!, line: i + 1, candidateNo: `T${String(i + 1).padStart(4, '0')}` }));
    expect(() => open(svc, 'too-big', roster)).toThrow(expect.objectContaining({ code: 'SESSION_CAPACITY' }));
    expect(() => svc.session('too-big')).toThrow(expect.objectContaining({ code: 'SESSION_NOT_FOUND' }));
    expect(open(svc, 'fits', roster.slice(0, 2)).seats).toHaveLength(2);
  });
});
