import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { toCsv } from '../core/csv.js';
import { DeploylabError } from '../core/errors.js';
import { log } from '../core/logger.js';
import { scoreFromCatalogue, type CheckResult, type Outcome, type ScoreSheet } from '../scoring/score.js';
import { nowIso } from '../store/db.js';
import { levelOf, loadCatalogue } from '../tasks/catalogue.js';
import type { Ledger } from './ledger-store.js';
import { taskDrift } from './pinned-tasks.js';
import { examinedPaper, sessionDir, type RoomContext } from './room-context.js';
import { htmlToPdf, type PdfWarning } from './score-sheet-pdf.js';
import { renderScoreSheetHtml, type ExaminerMarkLine, type ScoreSheetDoc } from './score-sheet.js';
import type { SeatStateName } from './state-machine.js';

const slog = log.child({ module: 'sessions' });

/*
 * Reports are derived from the ledger, never stored: the latest finished run of each seat with the
 * examiners' marks applied (latest mark wins), as JSON, CSV and a printable score sheet.
 */

export interface SeatReport {
  seat: string;
  candidateNo: string;
  name: string;
  state: SeatStateName;
  runId: number | null;
  sheet: ScoreSheet | null;
  checks: (CheckResult & { evidenceFile: string | null; marked: boolean })[];
  /** Examiner marks in force (the latest per check), with who gave them and why. */
  marks: ExaminerMarkLine[];
}

export interface WrittenReport {
  csv: string;
  json: string;
  /** The printable score sheet. */
  html: string;
  seats: SeatReport[];
}

/** Per seat: the latest finished, non-error run's checks, with examiner marks applied (latest mark wins). */
export function report(ledger: Ledger, id: string): SeatReport[] {
  const s = ledger.session(id);
  const catalogue = loadCatalogue();
  return ledger.seats(id).map((seat) => {
    const run = ledger.latestGradedRun(id, seat.seat_id);
    if (!run) return { seat: seat.seat_id, candidateNo: seat.candidate_no, name: seat.name, state: seat.state, runId: null, sheet: null, checks: [], marks: [] };
    const rows = ledger.checkResults(run.id);
    const latest = new Map(ledger.marks(id, seat.seat_id).map((m) => [`${m.task_id}/${m.check_id}`, m]));
    const markLines: ExaminerMarkLine[] = rows.flatMap((r) => {
      const m = latest.get(`${r.task_id}/${r.check_id}`);
      return m ? [{ taskId: r.task_id, checkId: r.check_id, points: r.points, earned: m.earned, autoEarned: r.earned, examiner: m.examiner, reason: m.reason, at: m.at }] : [];
    });
    const checks = rows.map((r) => {
      const m = latest.get(`${r.task_id}/${r.check_id}`)?.earned;
      const earned = m ?? r.earned;
      const outcome: Outcome = m === undefined ? r.outcome : m >= r.points ? 'pass' : m <= 0 ? 'fail' : 'partial';
      return { taskId: r.task_id, checkId: r.check_id, skill: r.skill, points: r.points, earned, outcome, evidenceFile: r.evidence_file, marked: m !== undefined };
    });
    const sheet = scoreFromCatalogue(catalogue, { level: s.level, practice: s.practice === 1, checks });
    return { seat: seat.seat_id, candidateNo: seat.candidate_no, name: seat.name, state: seat.state, runId: run.id, sheet, checks, marks: markLines };
  });
}

/** An examiner's mark for one check, appended to the ledger (the report uses the latest). */
export function mark(ledger: Ledger, id: string, seatId: string, taskId: string, checkId: string, examiner: string, earned: number, reason: string): void {
  ledger.seat(id, seatId);
  const points = ledger.checkPoints(id, seatId, taskId, checkId);
  if (points === null || !(earned >= 0 && earned <= points) || !reason.trim()) {
    throw new DeploylabError({ code: 'MARK_INVALID', fault: 'config', message: { zh: '评分无效：检查项不存在、分数越界或缺少理由', en: 'invalid mark: unknown check, earned out of range, or no reason' }, details: { taskId, checkId, earned, points } });
  }
  ledger.addMark(id, seatId, taskId, checkId, examiner, earned, reason);
}

/** What the printable score sheet shows (pure data; rendering is score-sheet.ts). */
export function scoreSheetDoc(ctx: RoomContext, id: string, seats: SeatReport[] = report(ctx.ledger, id)): ScoreSheetDoc {
  const s = ctx.ledger.session(id);
  const catalogue = loadCatalogue();
  const level = levelOf(catalogue, s.level);
  let title: ScoreSheetDoc['paper']['title'] = null;
  try {
    title = examinedPaper(ctx, id).paper.title;
  } catch {
    // The paper's folder may be gone (a report made elsewhere); its id is enough on the sheet.
  }
  const day = new Date(ctx.ledger.startedAt(id) ?? s.created_at);
  const p = (n: number): string => String(n).padStart(2, '0');
  const weights = catalogue.weights.practical[s.level];
  return {
    session: id,
    room: s.room,
    paper: { id: s.paper_id, title },
    level: { code: s.level, zh: level.zh, en: level.en },
    practice: s.practice === 1,
    date: `${day.getFullYear()}-${p(day.getMonth() + 1)}-${p(day.getDate())}`,
    generatedAt: nowIso(),
    passMark: catalogue.exam.passMark,
    functions: catalogue.functions.map((f) => ({ code: f.code, zh: f.zh, en: f.en, weight: weights[f.code] })),
    examinerLines: catalogue.exam.examiners.min,
    rows: seats.map((r) => ({ seat: r.seat, candidateNo: r.candidateNo, name: r.name, sheet: r.sheet, marks: r.marks })),
  };
}

/** Scores as JSON and CSV, and the printable score sheet (HTML), in `dir`. */
export function writeReport(ctx: RoomContext, id: string, dir = join(sessionDir(ctx, id), 'report')): WrittenReport {
  const seats = report(ctx.ledger, id);
  const s = ctx.ledger.session(id);
  const spec = ctx.ledger.spec(id);
  mkdirSync(dir, { recursive: true });
  const json = join(dir, 'scores.json');
  // Which task content was graded, and what on disk differs from it now.
  const tasks = spec.pinned ? { pinned: spec.pinned.hashes, changedOnDisk: taskDrift(spec) } : null;
  writeFileSync(json, JSON.stringify({ session: id, paper: s.paper_id, level: s.level, room: s.room, practice: s.practice === 1, generatedAt: nowIso(), tasks, seats }, null, 2));
  const csv = join(dir, 'scores.csv');
  writeFileSync(
    csv,
    toCsv([
      ['seat', 'candidate_no', 'name', 'f1', 'f2', 'f3', 'f4', 'total', 'passed', 'complete', 'run'],
      ...seats.map((r) => [
        r.seat, r.candidateNo, r.name,
        ...(r.sheet ? r.sheet.functions.map((f) => f.marks.toFixed(2)) : ['', '', '', '']),
        r.sheet ? r.sheet.totalShown.toFixed(1) : '',
        r.sheet ? (r.sheet.passed === null ? 'pending' : r.sheet.passed ? 'pass' : 'fail') : 'not graded',
        r.sheet ? String(r.sheet.complete) : 'false',
        r.runId ?? '',
      ]),
    ]),
  );
  const html = join(dir, 'score-sheet.html');
  writeFileSync(html, renderScoreSheetHtml(scoreSheetDoc(ctx, id, seats)));
  return { csv, json, html, seats };
}

/**
 * `writeReport` and the score sheet's PDF beside it, printed by the host's headless Chromium.
 * Without Chromium (or when it fails) the PDF is skipped with a warning: the HTML prints too.
 */
export async function writePrintableReport(ctx: RoomContext, id: string, dir?: string, opts: { chromium?: string | null } = {}): Promise<WrittenReport & { pdf: string | null; warnings: PdfWarning[] }> {
  const r = dir === undefined ? writeReport(ctx, id) : writeReport(ctx, id, dir);
  const pdf = await htmlToPdf(r.html, join(dirname(r.html), 'score-sheet.pdf'), opts.chromium === undefined ? {} : { chromium: opts.chromium });
  for (const w of pdf.warnings) slog.warn({ session: id, code: w.code }, w.message.en);
  return { ...r, ...pdf };
}
