import { z } from 'zod';
import { DeploylabError, type Bilingual } from '../core/errors.js';
import { FUNCTION_CODES, functionOfSkill, type Catalogue, type FunctionCode, type Level } from '../tasks/catalogue.js';

/**
 * The practical-exam mark of one candidate, from the checks of one paper. Pure.
 *
 * Rules (tasks/README.md, "Scoring"):
 * - Per occupational function f: ratio_f = earned_f ÷ possible_f over that function's checks.
 * - total = Σ weight_f × ratio_f with the level's section-4.2 weights (out of 100).
 * - Pass when the UNROUNDED total ≥ the pass mark (60, inclusive). The total is shown with one
 *   decimal, truncated (rounded down), so the shown mark and the decision can never disagree:
 *   59.95 shows as 59.9 and fails; 60.0 shows as 60.0 and passes.
 * - A function without checks: a real exam refuses it (PAPER_FUNCTION_UNCOVERED); a practice
 *   paper rescales the weights over the covered functions and the sheet says so.
 * - A check whose outcome is `error` or `pending` has not been judged: it contributes 0 to a
 *   provisional total, the sheet is incomplete and `passed` is null until it is re-graded.
 */
export const OUTCOMES = ['pass', 'partial', 'fail', 'blocked', 'error', 'pending'] as const;
export const OutcomeSchema = z.enum(OUTCOMES);
export type Outcome = (typeof OUTCOMES)[number];

export interface CheckResult {
  taskId: string;
  checkId: string;
  skill: string;
  points: number;
  earned: number;
  outcome: Outcome;
}

export interface ScoreInput {
  level: Level;
  /** Section 4.2 weights of the level, summing to 100. */
  weights: Readonly<Record<FunctionCode, number>>;
  passMark: number;
  practice: boolean;
  checks: readonly CheckResult[];
}

export interface FunctionScore {
  code: FunctionCode;
  /** The standard's weight (section 4.2). */
  weight: number;
  /** The weight used: equal to `weight` in an exam; rescaled over covered functions in practice. */
  appliedWeight: number;
  possible: number;
  earned: number;
  /** earned ÷ possible; null when the function has no checks. */
  ratio: number | null;
  /** appliedWeight × ratio, unrounded. */
  marks: number;
}

export interface ScoreSheet {
  level: Level;
  practice: boolean;
  functions: FunctionScore[];
  /** Unrounded; the pass decision uses this. */
  total: number;
  /** One decimal, truncated. */
  totalShown: number;
  passMark: number;
  /** null while any check is ungraded. */
  passed: boolean | null;
  complete: boolean;
  ungraded: { taskId: string; checkId: string; outcome: Outcome }[];
  notes: Bilingual[];
}

/** Floating-point slack only: weights and points are small numbers, sums stay far above 1e-9. */
const EPS = 1e-9;

/** One decimal, rounded down (with float slack so 60 computed as 59.999999999 is still 60.0). */
export function truncate1(x: number): number {
  return Math.floor(x * 10 + EPS) / 10;
}

function bad(msg: string, details: Record<string, unknown>): DeploylabError {
  return new DeploylabError({ code: 'SCORE_INVALID_INPUT', fault: 'bug', message: { zh: `评分输入无效：${msg}`, en: `invalid scoring input: ${msg}` }, details });
}

/**
 * A check's result from a probe outcome (status + score in 0..1, as graders/probe.ts defines it).
 * `blocked`: a dependency did not pass, so the check was not run and earns nothing.
 */
export function toCheckResult(opts: {
  taskId: string;
  check: { id: string; skill: string; points: number };
  status: Outcome;
  /** 0..1; ignored unless status is partial. */
  score?: number;
}): CheckResult {
  const { check, status } = opts;
  let earned = 0;
  if (status === 'pass') earned = check.points;
  else if (status === 'partial') {
    const s = opts.score ?? NaN;
    if (!(s > 0 && s < 1)) throw bad(`check ${opts.taskId}/${check.id}: partial needs 0 < score < 1`, { score: s });
    earned = check.points * s;
  }
  return { taskId: opts.taskId, checkId: check.id, skill: check.skill, points: check.points, earned, outcome: status };
}

export function scoreFromCatalogue(catalogue: Catalogue, opts: { level: Level; practice: boolean; checks: readonly CheckResult[] }): ScoreSheet {
  return score({ ...opts, weights: catalogue.weights.practical[opts.level], passMark: catalogue.exam.passMark });
}

export function score(input: ScoreInput): ScoreSheet {
  const wsum = FUNCTION_CODES.reduce((a, f) => a + input.weights[f], 0);
  if (Math.abs(wsum - 100) > EPS) throw bad(`weights sum to ${wsum}, not 100`, { weights: input.weights });
  if (input.checks.length === 0) {
    throw new DeploylabError({
      code: 'SCORE_NO_CHECKS',
      fault: 'config',
      message: { zh: '试卷没有任何检查项，无法评分', en: 'the paper has no checks; nothing to score' },
    });
  }
  const possible: Record<FunctionCode, number> = { '1': 0, '2': 0, '3': 0, '4': 0 };
  const earned: Record<FunctionCode, number> = { '1': 0, '2': 0, '3': 0, '4': 0 };
  const ungraded: ScoreSheet['ungraded'] = [];
  const keys = new Set<string>();
  for (const c of input.checks) {
    const key = `${c.taskId}/${c.checkId}`;
    if (keys.has(key)) throw bad(`check ${key} appears twice`, { check: c });
    keys.add(key);
    if (!(Number.isFinite(c.points) && c.points > 0)) throw bad(`check ${key}: points must be > 0`, { check: c });
    if (!(Number.isFinite(c.earned) && c.earned >= 0 && c.earned <= c.points + EPS)) throw bad(`check ${key}: earned must be within 0..points`, { check: c });
    const judged = c.outcome !== 'error' && c.outcome !== 'pending';
    if (!judged) ungraded.push({ taskId: c.taskId, checkId: c.checkId, outcome: c.outcome });
    if ((c.outcome === 'fail' || c.outcome === 'blocked' || !judged) && c.earned !== 0) {
      throw bad(`check ${key}: outcome ${c.outcome} cannot earn points`, { check: c });
    }
    if (c.outcome === 'pass' && Math.abs(c.earned - c.points) > EPS) throw bad(`check ${key}: a pass earns all its points`, { check: c });
    const f = functionOfSkill(c.skill);
    possible[f] += c.points;
    earned[f] += Math.min(c.earned, c.points);
  }
  const covered = FUNCTION_CODES.filter((f) => possible[f] > 0);
  const uncovered = FUNCTION_CODES.filter((f) => possible[f] === 0);
  const notes: Bilingual[] = [];
  if (uncovered.length > 0 && !input.practice) {
    throw new DeploylabError({
      code: 'PAPER_FUNCTION_UNCOVERED',
      fault: 'config',
      message: {
        zh: `职业功能 ${uncovered.join('、')} 没有检查项，正式考试无法按标准权重评分`,
        en: `occupational function(s) ${uncovered.join(', ')} have no checks; a real exam cannot be scored with the standard's weights`,
      },
      hint: { zh: '为每个职业功能加入考题，或将试卷标为 practice: true', en: 'add tasks for every function, or mark the paper practice: true' },
      details: { uncovered },
    });
  }
  const coveredWeight = covered.reduce((a, f) => a + input.weights[f], 0);
  if (uncovered.length > 0) {
    notes.push({
      zh: `练习卷：职业功能 ${uncovered.join('、')} 无检查项，权重按已覆盖的功能 ${covered.join('、')} 等比放大（合计 ${coveredWeight}% → 100%）`,
      en: `practice paper: function(s) ${uncovered.join(', ')} have no checks; weights rescaled over covered function(s) ${covered.join(', ')} (${coveredWeight}% → 100%)`,
    });
  }
  const functions: FunctionScore[] = FUNCTION_CODES.map((f) => {
    const weight = input.weights[f];
    const appliedWeight = possible[f] > 0 ? (weight * 100) / coveredWeight : 0;
    const ratio = possible[f] > 0 ? earned[f] / possible[f] : null;
    return { code: f, weight, appliedWeight, possible: possible[f], earned: earned[f], ratio, marks: ratio === null ? 0 : appliedWeight * ratio };
  });
  const total = functions.reduce((a, f) => a + f.marks, 0);
  const complete = ungraded.length === 0;
  if (!complete) {
    notes.push({
      zh: `${ungraded.length} 个检查项尚未评定（error/pending），总分为暂定，需重新评分`,
      en: `${ungraded.length} check(s) not judged (error/pending); the total is provisional until they are re-graded`,
    });
  }
  return {
    level: input.level,
    practice: input.practice,
    functions,
    total,
    totalShown: truncate1(total),
    passMark: input.passMark,
    passed: complete ? total + EPS >= input.passMark : null,
    complete,
    ungraded,
    notes,
  };
}
