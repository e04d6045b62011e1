import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerDriver } from '../../runner/sandbox/docker-driver.js';
import { loadExamPaper } from '../../runner/sessions/paper.js';
import { parseRoster } from '../../runner/sessions/roster.js';
import { SessionService } from '../../runner/sessions/session-service.js';
import { openStore } from '../../runner/store/db.js';
import { hasChromium } from '../web/chromium.js';
import { cli, MINI_PAPER, miniTasksRoot } from './helpers.js';

/**
 * The printable score sheet of a small session: three candidates whose names carry markup, the
 * ledger filled as grading fills it (one run per seat, every check of the four-task paper: all
 * passed, all failed, every other one passed), an examiner mark with markup in it. No engine:
 * what is rendered is the ledger, whatever wrote it.
 */
const ROSTER_CSV = [
  '准考证号,姓名,身份证号',
  'T0001,"<script>alert(""x"")</script>",X00001',
  "T0002,O'Brien & 张三,X00002",
  'T0003,王五 <b>粗</b>,X00003',
  '',
].join('\n');

describe('printable score sheet', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'dl-sheet-'));
  const tasksRoot = miniTasksRoot();
  const id = 'sheet-1';
  const svc = new SessionService({ db: openStore(dataDir), driver: new DockerDriver(), dataDir });
  afterAll(() => {
    svc.db.close();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(tasksRoot, { recursive: true, force: true });
  });

  beforeAll(() => {
    svc.open({
      id,
      paperId: MINI_PAPER,
      tasksRoot,
      room: 'A101 <i>',
      roster: parseRoster(Buffer.from(ROSTER_CSV), 'roster.csv'),
      images: { workspaceCpu: 'deploylab/workspace-cpu:test', toolbox: null },
      baseUrl: 'http://127.0.0.1:8700/',
    });
    const paper = loadExamPaper(MINI_PAPER, tasksRoot);
    const checks = paper.tasks.flatMap((t) => t.task.checks.map((c) => ({ task: t.task.id, ...c })));
    const passes: Record<string, (i: number) => boolean> = { s01: () => true, s02: () => false, s03: (i) => i % 2 === 0 };
    for (const [seat, pass] of Object.entries(passes)) {
      const run = Number(svc.db.prepare("INSERT INTO grading_runs (session_id, seat_id, started_at, reason) VALUES (?, ?, '2025-06-01T01:00:00Z', 'end of exam')").run(id, seat).lastInsertRowid);
      checks.forEach((c, i) => {
        const ok = pass(i);
        svc.db
          .prepare(
            `INSERT INTO check_results (run_id, session_id, seat_id, task_id, check_id, skill, points, outcome, score, earned, summary, evidence_file, evidence_sha256, at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{}', NULL, NULL, '2025-06-01T01:01:00Z')`,
          )
          .run(run, id, seat, c.task, c.id, c.skill, c.points, ok ? 'pass' : 'fail', ok ? 1 : 0, ok ? c.points : 0);
      });
      svc.db.prepare("INSERT INTO grading_run_ends (run_id, ended_at, status) VALUES (?, '2025-06-01T01:02:00Z', 'complete')").run(run);
    }
    const first = checks[0]!;
    svc.mark(id, 's02', first.task, first.id, 'examiner <Li>', first.points, 'appeal upheld & "checked" by hand');
  });

  it('writes HTML beside the CSV and JSON: names escaped, totals and results as in the JSON, weights, marks, signature lines', async () => {
    const r = await svc.writePrintableReport(id, undefined, { chromium: null });
    const dir = join(dataDir, 'sessions', id, 'report');
    expect([r.csv, r.json, r.html]).toEqual([join(dir, 'scores.csv'), join(dir, 'scores.json'), join(dir, 'score-sheet.html')]);
    const json = JSON.parse(readFileSync(r.json, 'utf8')) as { seats: { seat: string; name: string; sheet: { totalShown: number; passed: boolean | null; functions: { code: string; marks: number }[] } }[] };
    const html = readFileSync(r.html, 'utf8');

    // Roster text is shown, never interpreted.
    expect(html).not.toContain('<script>');
    expect(html).not.toContain('<b>粗</b>');
    expect(html).not.toContain('<i>');
    expect(html).not.toContain('examiner <Li>');
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(html).toContain('O&#39;Brien &amp; 张三');
    expect(html).toContain('王五 &lt;b&gt;粗&lt;/b&gt;');
    expect(html).toContain('A101 &lt;i&gt;');

    // One row per candidate; each total and result is the JSON's.
    const rows = [...html.matchAll(/<tr data-seat="(s\d+)">([\s\S]*?)<\/tr>/g)];
    expect(rows.map((m) => m[1])).toEqual(['s01', 's02', 's03']);
    expect(json.seats.map((s) => s.sheet.totalShown)).toEqual([100, expect.any(Number), expect.any(Number)]);
    for (const [i, m] of rows.entries()) {
      const s = json.seats[i]!;
      expect(m[2]).toContain(`data-total="${s.sheet.totalShown.toFixed(1)}"`);
      expect(m[2]).toContain(`data-result="${s.sheet.passed ? 'pass' : 'fail'}"`);
      for (const f of s.sheet.functions) expect(m[2]).toContain(`data-function="${f.code}">${f.marks.toFixed(1)}<`);
    }
    expect(json.seats[1]!.sheet.totalShown).toBeGreaterThan(0);
    expect(json.seats[1]!.sheet.passed).toBe(false);
    expect(json.seats[2]!.sheet.totalShown).toBeGreaterThan(0);
    expect(json.seats[2]!.sheet.totalShown).toBeLessThan(100);
    // The examiner's mark, with who and why (escaped), on the candidate's row only.
    expect(rows[1]![2]).toContain('examiner &lt;Li&gt;：appeal upheld &amp; &quot;checked&quot; by hand');
    expect(rows[0]![2]).not.toContain('examiner');
    // The junior weights of section 4.2, bilingual labels, the room, paper, date and signature lines.
    for (const w of ['权重 Weight 25', '权重 Weight 30', '权重 Weight 20']) expect(html).toContain(w);
    expect(html).toContain('技能操作考核成绩单 <span class="en">Practical exam score sheet</span>');
    expect(html).toContain('测试小卷');
    expect(html).toMatch(/考试日期 <span class="en">Date<\/span><\/th><td>\d{4}-\d{2}-\d{2}</);
    expect(html.match(/class="sign"/g)).toHaveLength(4);
    expect(html).toContain('评分复核人签名');

    // No Chromium: the HTML stands, the PDF is skipped with a warning, nothing half-written.
    expect(r.pdf).toBeNull();
    expect(r.warnings.map((w) => w.code)).toContain('REPORT_PDF_NO_CHROMIUM');
    expect(existsSync(join(dir, 'score-sheet.pdf'))).toBe(false);
    expect(existsSync(join(dir, 'score-sheet.pdf.partial'))).toBe(false);
  });

  it('a Chromium that fails leaves the HTML and no PDF, with a warning naming the failure', async () => {
    const dir = join(dataDir, 'failing');
    const r = await svc.writePrintableReport(id, dir, { chromium: '/bin/false' });
    expect(r.pdf).toBeNull();
    expect(r.warnings).toEqual([expect.objectContaining({ code: 'REPORT_PDF_FAILED', message: expect.objectContaining({ en: expect.stringContaining('exit 1') }) })]);
    expect(existsSync(join(dir, 'score-sheet.html'))).toBe(true);
    expect(existsSync(join(dir, 'score-sheet.pdf'))).toBe(false);
    expect(existsSync(join(dir, 'score-sheet.pdf.partial'))).toBe(false);
  });

  it.skipIf(!hasChromium)('prints the sheet to a PDF with the host’s headless Chromium', async () => {
    const r = await svc.writePrintableReport(id);
    expect(r.warnings.filter((w) => w.code !== 'REPORT_PDF_NO_CJK_FONT')).toEqual([]);
    expect(r.pdf).toBe(join(dataDir, 'sessions', id, 'report', 'score-sheet.pdf'));
    const pdf = readFileSync(r.pdf!);
    expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    expect(statSync(r.pdf!).size).toBeGreaterThan(1000);
    const text = pdf.toString('latin1');
    expect(text.match(/\/Type\s*\/Page\b/g)?.length ?? 0).toBeGreaterThanOrEqual(1);
    // A4 landscape, as the sheet's @page asks (points, Chromium rounds).
    expect(text).toMatch(/\/MediaBox \[0 0 841\.\d+ 59[45]\.\d+\]/);
    expect(text.trimEnd().endsWith('%%EOF')).toBe(true);
  }, 120_000);

  it('`session report ID` prints the scores and names the sheet files', async () => {
    const r = await cli(dataDir, ['--json', 'session', 'report', id]).done;
    expect(r.code, r.out).toBe(0);
    const out = JSON.parse(r.out.slice(r.out.indexOf('{\n'))) as { html: string; pdf: string | null; seats: { seat: string }[] };
    expect(out.seats.map((s) => s.seat)).toEqual(['s01', 's02', 's03']);
    expect(existsSync(out.html)).toBe(true);
    if (hasChromium) expect(out.pdf && existsSync(out.pdf)).toBe(true);
  }, 120_000);
});
