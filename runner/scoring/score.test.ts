import { describe, expect, it } from 'vitest';
import { isDeploylabError } from '../core/errors.js';
import { loadCatalogue, LEVELS, type FunctionCode } from '../tasks/catalogue.js';
import { score, scoreFromCatalogue, toCheckResult, truncate1, type CheckResult, type Outcome } from './score.js';

const JUNIOR = { '1': 25, '2': 30, '3': 20, '4': 25 } as const;
const SENIOR = { '1': 35, '2': 20, '3': 20, '4': 25 } as const;

let n = 0;
function chk(skill: string, points: number, earned: number, outcome?: Outcome): CheckResult {
  n += 1;
  const o: Outcome = outcome ?? (earned === points ? 'pass' : earned === 0 ? 'fail' : 'partial');
  return { taskId: 't', checkId: `c${n}`, skill, points, earned, outcome: o };
}
const run = (checks: CheckResult[], weights: Record<FunctionCode, number> = JUNIOR, practice = false) =>
  score({ level: 'junior', weights, passMark: 60, practice, checks });

function errCode(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isDeploylabError(e) ? e.code : `not a DeploylabError: ${String(e)}`;
  }
  return undefined;
}

describe('score: hand-computed', () => {
  it('58.75: 25×1 + 30×½ + 20×0 + 25×¾, shown 58.7, fails', () => {
    const s = run([chk('1.2.1', 10, 10), chk('2.2.1', 12, 6), chk('2.2.2', 8, 4), chk('3.1.1', 5, 0), chk('4.2.2', 8, 6)]);
    expect(s.functions.map((f) => f.ratio)).toEqual([1, 0.5, 0, 0.75]);
    expect(s.functions.map((f) => f.marks)).toEqual([25, 15, 0, 18.75]);
    expect(s.total).toBe(58.75);
    expect(s.totalShown).toBe(58.7);
    expect(s.passed).toBe(false);
    expect(s.complete).toBe(true);
  });

  it('ratios are per function, not per point: a big check elsewhere does not dilute a function', () => {
    // Function 1 has 1 point, function 2 has 99: each still counts by its weight.
    const s = run([chk('1.1.1', 1, 1), chk('2.1.1', 99, 0), chk('3.1.1', 1, 1), chk('4.1.1', 1, 1)]);
    expect(s.total).toBe(70);
    expect(s.passed).toBe(true);
  });

  it('59.95 is shown as 59.9 and fails (pass is decided on the unrounded total)', () => {
    // 25 + 30 + 0 + 25 × 198/1000 = 59.95
    const s = run([chk('1.2.1', 1, 1), chk('2.2.1', 1, 1), chk('3.1.1', 1, 0), chk('4.1.1', 1000, 198)]);
    expect(s.total).toBeCloseTo(59.95, 12);
    expect(s.totalShown).toBe(59.9);
    expect(s.passed).toBe(false);
  });

  it('exactly 60 passes (60 inclusive) and is shown 60', () => {
    const s = run([chk('1.2.1', 1, 1), chk('2.2.1', 1, 1), chk('3.1.1', 4, 1), chk('4.1.1', 1, 0)]);
    expect(s.total).toBe(60);
    expect(s.totalShown).toBe(60);
    expect(s.passed).toBe(true);
  });

  it('60 reached through inexact floats (35×3/5 …) still passes and shows 60.0', () => {
    const s = run([chk('1.1.1', 5, 3), chk('2.1.1', 5, 3), chk('3.1.1', 5, 3), chk('4.1.1', 5, 3)], SENIOR);
    expect(Math.abs(s.total - 60)).toBeLessThan(1e-9);
    expect(s.totalShown).toBe(60);
    expect(s.passed).toBe(true);
  });

  it('partial scores: fractional earned points count pro rata', () => {
    const s = run([chk('1.2.1', 3, 1.5), chk('2.2.1', 2, 2), chk('3.1.1', 4, 1), chk('4.1.1', 10, 2.5)]);
    // 25×0.5 + 30×1 + 20×0.25 + 25×0.25 = 12.5 + 30 + 5 + 6.25 = 53.75
    expect(s.total).toBe(53.75);
    expect(s.totalShown).toBe(53.7);
  });

  it('all full marks = 100, all zero = 0', () => {
    expect(run([chk('1.1.1', 2, 2), chk('2.1.1', 3, 3), chk('3.1.1', 7, 7), chk('4.1.1', 1, 1)]).totalShown).toBe(100);
    const z = run([chk('1.1.1', 2, 0), chk('2.1.1', 3, 0), chk('3.1.1', 7, 0), chk('4.1.1', 1, 0, 'blocked')]);
    expect(z.total).toBe(0);
    expect(z.passed).toBe(false);
  });

  it('uses each level’s section-4.2 weights from the catalogue', () => {
    const cat = loadCatalogue();
    const checks = [chk('1.1.1', 1, 1), chk('2.1.1', 1, 0), chk('3.1.1', 1, 0), chk('4.1.1', 1, 0)];
    expect(LEVELS.map((level) => scoreFromCatalogue(cat, { level, practice: false, checks }).total)).toEqual([25, 30, 35]);
  });
});

describe('score: uncovered functions, zero checks, ungraded checks', () => {
  it('a real exam with a function without checks is refused', () => {
    expect(errCode(() => run([chk('1.2.1', 1, 1), chk('2.2.1', 1, 1)]))).toBe('PAPER_FUNCTION_UNCOVERED');
  });

  it('a practice paper rescales weights over covered functions and says so', () => {
    const s = run([chk('1.2.1', 4, 4), chk('2.2.1', 2, 1)], JUNIOR, true);
    // 25 and 30 → 25/55 and 30/55 of 100; 45.45… × 1 + 54.54… × 0.5 = 72.72…
    expect(s.functions.map((f) => f.appliedWeight)).toEqual([2500 / 55, 3000 / 55, 0, 0]);
    expect(s.functions[2]!.ratio).toBeNull();
    expect(s.total).toBeCloseTo(72.7272727, 6);
    expect(s.totalShown).toBe(72.7);
    expect(s.notes[0]!.en).toMatch(/rescaled over covered function\(s\) 1, 2 \(55% → 100%\)/);
    expect(s.notes[0]!.zh).toMatch(/等比放大/);
  });

  it('zero checks cannot be scored', () => {
    expect(errCode(() => run([]))).toBe('SCORE_NO_CHECKS');
  });

  it('an error outcome leaves the sheet provisional: passed is null until re-graded', () => {
    const s = run([chk('1.1.1', 1, 1), chk('2.1.1', 1, 1), chk('3.1.1', 1, 1), chk('4.1.1', 1, 0, 'error')]);
    expect(s.complete).toBe(false);
    expect(s.passed).toBeNull();
    expect(s.total).toBe(75);
    expect(s.ungraded).toEqual([{ taskId: 't', checkId: expect.any(String), outcome: 'error' }]);
  });

  it('rejects impossible inputs', () => {
    expect(errCode(() => run([chk('1.1.1', 1, 2, 'partial')]))).toBe('SCORE_INVALID_INPUT');
    expect(errCode(() => run([chk('1.1.1', 2, 1, 'pass')]))).toBe('SCORE_INVALID_INPUT');
    expect(errCode(() => run([chk('1.1.1', 2, 1, 'error')]))).toBe('SCORE_INVALID_INPUT');
    expect(errCode(() => run([chk('1.1.1', 0, 0, 'fail')]))).toBe('SCORE_INVALID_INPUT');
    const c = chk('1.1.1', 1, 1);
    expect(errCode(() => run([c, c]))).toBe('SCORE_INVALID_INPUT');
    expect(errCode(() => run([chk('1.1.1', 1, 1)], { '1': 50, '2': 30, '3': 20, '4': 25 }))).toBe('SCORE_INVALID_INPUT');
  });
});

describe('score: against exact rational arithmetic', () => {
  it('2000 random papers: shown total = ⌊10·Σ w·e/p⌋/10 and pass ⇔ Σ w·e/p ≥ 60, computed in BigInt', () => {
    let seed = 12345;
    const rnd = (k: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % k;
    };
    const weightsByLevel = Object.values(loadCatalogue().weights.practical);
    for (let i = 0; i < 2000; i++) {
      const w = weightsByLevel[i % 3]!;
      const checks: CheckResult[] = [];
      const P: bigint[] = [];
      const E: bigint[] = [];
      for (const f of ['1', '2', '3', '4'] as const) {
        let p = 0;
        let e = 0;
        for (let k = 0, m = 1 + rnd(3); k < m; k++) {
          const pts = 1 + rnd(20);
          const got = rnd(pts + 1);
          p += pts;
          e += got;
          checks.push(chk(`${f}.1.1`, pts, got));
        }
        P.push(BigInt(p));
        E.push(BigInt(e));
      }
      // total = N / D with D = p1·p2·p3·p4
      const D = P.reduce((a, b) => a * b, 1n);
      const N = [0, 1, 2, 3].reduce((a, j) => a + BigInt(w[(['1', '2', '3', '4'] as const)[j]!]) * E[j]! * (D / P[j]!), 0n);
      const s = score({ level: 'junior', weights: w, passMark: 60, practice: false, checks });
      expect(s.totalShown).toBe(Number((10n * N) / D) / 10);
      expect(s.passed).toBe(N >= 60n * D);
    }
  });

  it('truncate1', () => {
    expect([truncate1(59.95), truncate1(59.99999999999), truncate1(60), truncate1(0.05), truncate1(100)]).toEqual([59.9, 60, 60, 0, 100]);
  });
});

describe('toCheckResult', () => {
  const check = { id: 'c', skill: '2.2.1', points: 4 };
  it('maps probe outcomes to earned points', () => {
    expect(toCheckResult({ taskId: 't', check, status: 'pass' }).earned).toBe(4);
    expect(toCheckResult({ taskId: 't', check, status: 'partial', score: 0.25 }).earned).toBe(1);
    expect(toCheckResult({ taskId: 't', check, status: 'fail', score: 0.9 }).earned).toBe(0);
    expect(toCheckResult({ taskId: 't', check, status: 'error' })).toEqual({ taskId: 't', checkId: 'c', skill: '2.2.1', points: 4, earned: 0, outcome: 'error' });
    expect(() => toCheckResult({ taskId: 't', check, status: 'partial', score: 1 })).toThrow(/partial needs/);
  });
});
