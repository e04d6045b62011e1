import type { Bilingual } from '../core/errors.js';
import { escapeHtml as esc } from '../core/html.js';
import type { ScoreSheet } from '../scoring/score.js';
import type { FunctionCode, Level } from '../tasks/catalogue.js';

/**
 * The printable score sheet of one session: an HTML page laid out for A4 landscape, Chinese first
 * with English beside it, one row per candidate, signature lines at the end. Pure: everything it
 * shows comes in `ScoreSheetDoc`; every text from outside the program (roster names, examiners'
 * names and reasons, room) is escaped.
 */

export interface ExaminerMarkLine {
  taskId: string;
  checkId: string;
  points: number;
  /** Points the examiner gave (the latest mark of this check). */
  earned: number;
  /** Points the automatic grading gave. */
  autoEarned: number;
  examiner: string;
  reason: string;
  at: string;
}

export interface ScoreSheetRow {
  seat: string;
  candidateNo: string;
  name: string;
  /** null: not graded yet. */
  sheet: ScoreSheet | null;
  marks: ExaminerMarkLine[];
}

export interface ScoreSheetDoc {
  session: string;
  room: string;
  paper: { id: string; title: Bilingual | null };
  level: { code: Level; zh: string; en: string };
  practice: boolean;
  /** The exam's date (YYYY-MM-DD, the host's local time). */
  date: string;
  generatedAt: string;
  passMark: number;
  /** The standard's section-4.2 weights of the level, with the functions' names. */
  functions: { code: FunctionCode; zh: string; en: string; weight: number }[];
  /** Signature lines for examiners (the standard: three or more, an odd number). */
  examinerLines: number;
  rows: ScoreSheetRow[];
}

const fmt1 = (x: number): string => x.toFixed(1);

function result(sheet: ScoreSheet | null): { zh: string; en: string; cls: string } {
  if (!sheet) return { zh: '未评分', en: 'Not graded', cls: 'none' };
  if (sheet.passed === null) return { zh: '待定', en: 'Pending', cls: 'pending' };
  return sheet.passed ? { zh: '合格', en: 'Pass', cls: 'pass' } : { zh: '不合格', en: 'Fail', cls: 'fail' };
}

const bi = (zh: string, en: string): string => `${esc(zh)} <span class="en">${esc(en)}</span>`;

function marksCell(marks: ExaminerMarkLine[]): string {
  if (marks.length === 0) return '<span class="muted">—</span>';
  return `<ul class="marks">${marks
    .map(
      (m) =>
        `<li><code>${esc(m.taskId)}/${esc(m.checkId)}</code> ${fmt1(m.autoEarned)} → <b>${fmt1(m.earned)}</b>/${fmt1(m.points)} · ${esc(m.examiner)}：${esc(m.reason)}</li>`,
    )
    .join('')}</ul>`;
}

export function renderScoreSheetHtml(doc: ScoreSheetDoc): string {
  const head = doc.functions
    .map((f) => `<th class="num">${esc(f.code)}. ${esc(f.zh)}<br><span class="en">${esc(f.en)}</span><br><span class="w">权重 Weight ${f.weight}</span></th>`)
    .join('');
  const rows = doc.rows
    .map((r) => {
      const res = result(r.sheet);
      const fn = doc.functions
        .map((f) => {
          const s = r.sheet?.functions.find((x) => x.code === f.code);
          if (!s || s.ratio === null) return '<td class="num">—</td>';
          return `<td class="num" data-function="${esc(f.code)}">${fmt1(s.marks)}<span class="of"> / ${fmt1(s.appliedWeight)}</span></td>`;
        })
        .join('');
      return `<tr data-seat="${esc(r.seat)}">
<td>${esc(r.seat)}</td><td class="nowrap">${esc(r.candidateNo)}</td><td class="name">${esc(r.name)}</td>${fn}
<td class="num total" data-total="${r.sheet ? fmt1(r.sheet.totalShown) : ''}">${r.sheet ? fmt1(r.sheet.totalShown) : '—'}</td>
<td class="result ${res.cls}" data-result="${res.cls}">${bi(res.zh, res.en)}</td>
<td>${marksCell(r.marks)}</td></tr>`;
    })
    .join('\n');
  const notes = new Map<string, Bilingual>();
  for (const r of doc.rows) for (const n of r.sheet?.notes ?? []) notes.set(n.en, n);
  const counts = {
    pass: doc.rows.filter((r) => r.sheet?.passed === true).length,
    fail: doc.rows.filter((r) => r.sheet?.passed === false).length,
    open: doc.rows.filter((r) => !r.sheet || r.sheet.passed === null).length,
  };
  const sign = (zh: string, en: string): string =>
    `<div class="sign"><span class="label">${bi(zh, en)}</span><span class="line"></span><span class="label">${bi('日期', 'Date')}</span><span class="line short"></span></div>`;
  const examinerLines = Array.from({ length: Math.max(1, doc.examinerLines) }, (_, i) => sign(`考评员 ${i + 1} 签名`, `Examiner ${i + 1}`)).join('\n');
  const paperTitle = doc.paper.title ? ` · ${bi(doc.paper.title.zh, doc.paper.title.en)}` : '';
  return `<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>技能操作考核成绩单 Practical exam score sheet — ${esc(doc.room)} · ${esc(doc.paper.id)} · ${esc(doc.date)}</title>
<style>
@page { size: A4 landscape; margin: 12mm; }
@media screen { body { max-width: 273mm; margin: 12mm auto; } }
body { font-family: "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei", sans-serif; font-size: 10.5pt; color: #000; margin: 0; }
h1 { font-size: 16pt; margin: 0 0 4pt; }
.sub { color: #333; margin: 0 0 8pt; }
.en { color: #444; font-size: .9em; }
.meta { border-collapse: collapse; margin-bottom: 8pt; }
.meta th { text-align: left; font-weight: normal; color: #333; padding: 1pt 8pt 1pt 0; }
.meta td { padding: 1pt 18pt 1pt 0; font-weight: bold; }
table.scores { border-collapse: collapse; width: 100%; table-layout: fixed; }
col.seat { width: 5%; } col.no { width: 9%; } col.name { width: 12%; } col.fn { width: 9.5%; } col.total { width: 6%; } col.result { width: 8.5%; }
table.scores th, table.scores td { border: 1px solid #555; padding: 3pt 4pt; vertical-align: top; overflow-wrap: anywhere; }
table.scores th { font-size: .9em; }
table.scores th { background: #eee; font-weight: bold; text-align: left; }
thead { display: table-header-group; }
tr { page-break-inside: avoid; break-inside: avoid; }
.num { text-align: right; }
td.num { white-space: nowrap; }
.of, .w { color: #555; font-weight: normal; font-size: .85em; }
.total { font-weight: bold; }
.nowrap { white-space: nowrap; }
.result.pass { font-weight: bold; }
.result.fail { font-weight: bold; text-decoration: underline; }
.muted { color: #777; }
ul.marks { margin: 0; padding-left: 12pt; font-size: .85em; }
.notes { font-size: .9em; margin-top: 6pt; }
.signatures { margin-top: 16pt; page-break-inside: avoid; break-inside: avoid; }
.sign { display: flex; align-items: flex-end; gap: 6pt; margin: 14pt 0 0; }
.sign .label { white-space: nowrap; }
.sign .line { border-bottom: 1px solid #000; flex: 1; height: 14pt; }
.sign .line.short { flex: 0 0 35mm; }
</style></head>
<body>
<h1>${bi('技能操作考核成绩单', 'Practical exam score sheet')}</h1>
<p class="sub">人工智能技术（大模型部署工程师）职业能力等级评价标准 <span class="en">LLM Deployment Engineer skill standard</span>${doc.practice ? ` · ${bi('练习卷（不计成绩）', 'practice paper (not an exam result)')}` : ''}</p>
<table class="meta">
<tr><th>${bi('考场', 'Room')}</th><td>${esc(doc.room)}</td><th>${bi('试卷', 'Paper')}</th><td>${esc(doc.paper.id)}${paperTitle}</td><th>${bi('等级', 'Level')}</th><td>${bi(doc.level.zh, doc.level.en)}</td></tr>
<tr><th>${bi('考试日期', 'Date')}</th><td>${esc(doc.date)}</td><th>${bi('场次', 'Session')}</th><td>${esc(doc.session)}</td><th>${bi('合格线', 'Pass mark')}</th><td>${doc.passMark} / 100</td></tr>
</table>
<table class="scores">
<colgroup><col class="seat"><col class="no"><col class="name">${doc.functions.map(() => '<col class="fn">').join('')}<col class="total"><col class="result"><col class="marks"></colgroup>
<thead><tr><th>${bi('考位', 'Seat')}</th><th>${bi('准考证号', 'Candidate No.')}</th><th>${bi('姓名', 'Name')}</th>${head}<th class="num">${bi('总分', 'Total')}</th><th>${bi('结果', 'Result')}</th><th>${bi('考评员评分', 'Examiner marks')}</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
<p class="notes">${bi('合格', 'Pass')} ${counts.pass} · ${bi('不合格', 'Fail')} ${counts.fail} · ${bi('待定或未评分', 'Pending or not graded')} ${counts.open}。
${bi('各职业功能得分 = 权重 × 得分率；总分保留一位小数（舍去），是否合格按未舍入的总分判定。', "Each function's marks = weight × share of its points earned; the total is shown with one decimal, rounded down, and the pass decision uses the unrounded total.")}</p>
${notes.size > 0 ? `<ul class="notes">${[...notes.values()].map((n) => `<li>${bi(n.zh, n.en)}</li>`).join('')}</ul>` : ''}
<div class="signatures">
${examinerLines}
${sign('评分复核人签名', 'Grader')}
</div>
<p class="notes muted">${bi('生成时间', 'Generated')} ${esc(doc.generatedAt)}</p>
</body></html>
`;
}
