import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { asDeploylabError } from '../core/errors.js';
import { sha256File, walkFiles } from '../core/files.js';
import { PINNED_DIR } from './pinned-tasks.js';
import { writePrintableReport } from './reports.js';
import { seatSandboxes, sessionDir, type RoomContext } from './room-context.js';

export const MANIFEST = 'SHA256SUMS';

export interface Archived {
  dir: string;
  files: number;
  manifestSha256: string;
}

/**
 * Workspace archives, evidence, the tasks the session examined (its pinned copy), report and
 * ledger export, with a SHA-256 manifest. The caller holds the session.
 */
export async function archiveSession(ctx: RoomContext, id: string): Promise<Archived> {
  ctx.ledger.moveSession(id, 'archive');
  const home = sessionDir(ctx, id);
  const dir = join(home, `archive-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  mkdirSync(join(dir, 'workspaces'), { recursive: true });
  for (const s of ctx.ledger.seats(id)) {
    if (['pending', 'failed', 'removed'].includes(s.state)) continue;
    for (const b of seatSandboxes(ctx, id, s.seat_id)) {
      try {
        await ctx.driver.captureEvidence(b.ref, join(dir, 'workspaces', `${b.ref.seat}.tar.gz`));
      } catch (e) {
        const err = asDeploylabError(e);
        writeFileSync(join(dir, 'workspaces', `${b.ref.seat}.MISSING.txt`), `${err.code}: ${err.message}\n`);
      }
    }
  }
  const ev = join(home, 'evidence');
  if (existsSync(ev)) cpSync(ev, join(dir, 'evidence'), { recursive: true });
  if (existsSync(join(home, PINNED_DIR))) cpSync(join(home, PINNED_DIR), join(dir, PINNED_DIR), { recursive: true });
  await writePrintableReport(ctx, id, join(dir, 'report'));
  mkdirSync(join(dir, 'ledger'), { recursive: true });
  for (const [file, lines] of Object.entries(ctx.ledger.exportLedger(id))) writeFileSync(join(dir, 'ledger', file), lines);
  const files = walkFiles(dir);
  const manifest = files.map((f) => `${sha256File(f)}  ${relative(dir, f)}`).join('\n') + '\n';
  writeFileSync(join(dir, MANIFEST), manifest);
  const manifestSha256 = createHash('sha256').update(manifest).digest('hex');
  ctx.ledger.recordArchive(id, dir, manifestSha256, files.length);
  ctx.progress({ zh: `已归档 ${files.length} 个文件到 ${dir}`, en: `archived ${files.length} file(s) to ${dir}` });
  return { dir, files: files.length, manifestSha256 };
}

/** Files whose bytes differ from the manifest (or are missing / unlisted). Empty: the archive is intact. */
export function verifyManifest(dir: string): string[] {
  const listed = new Map<string, string>();
  for (const line of readFileSync(join(dir, MANIFEST), 'utf8').split('\n')) {
    const m = /^([0-9a-f]{64}) {2}(.+)$/.exec(line);
    if (m) listed.set(m[2]!, m[1]!);
  }
  const bad: string[] = [];
  for (const [rel, hash] of listed) {
    const f = join(dir, rel);
    if (!existsSync(f) || sha256File(f) !== hash) bad.push(rel);
  }
  for (const f of walkFiles(dir)) {
    const rel = relative(dir, f);
    if (rel !== MANIFEST && !listed.has(rel)) bad.push(rel);
  }
  return bad;
}
