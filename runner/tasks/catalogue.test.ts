import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isDeploylabError } from '../core/errors.js';
import { FUNCTION_CODES, LEVELS, findSkill, loadCatalogue, parseCatalogue, skillsOf, DEFAULT_CATALOGUE_PATH } from './catalogue.js';
import { parseStandardLevels, parseStandardWeights } from './standard-text.js';

// The standard's own text, read independently of the YAML.
const STANDARD = fileURLToPath(new URL('../../tasks/standard/standard-text.txt', import.meta.url));
const text = readFileSync(STANDARD, 'utf8');
const fromText = parseStandardLevels(text);
const cat = loadCatalogue();

describe('standard text parser', () => {
  it('finds three levels with the names the standard uses', () => {
    expect(fromText.map((l) => l.zh)).toEqual(['初级', '中级', '高级']);
  });
  it('glues rows broken across pages back together', () => {
    const junior = fromText[0]!.functions[3]!.workContents[1]!.skills[1]!;
    expect(junior).toEqual({ code: '4.2.2', zh: '能分析与处理进程停止等常见服务中断问题，保障服务可用性' });
    const mid = fromText[1]!.functions[3]!.workContents[1]!.skills.map((s) => s.code);
    expect(mid).toEqual(['4.2.1', '4.2.2']);
  });
});

describe('catalogue against the standard text', () => {
  it.each(LEVELS.map((l, i) => [l, i] as const))('%s: four functions, every work content and skill item, identical Chinese', (level, i) => {
    const t = fromText[i]!;
    const c = cat.levels[i]!;
    expect(c.code).toBe(level);
    expect(c.zh).toBe(t.zh);
    expect(c.section).toBe(t.section);
    expect(t.functions.map((f) => f.code)).toEqual([...FUNCTION_CODES]);
    const strip = (lv: typeof t) =>
      lv.functions.map((f) => ({
        code: f.code,
        zh: f.zh,
        workContents: f.workContents.map((w) => ({ code: w.code, zh: w.zh, skills: w.skills.map((s) => ({ code: s.code, zh: s.zh })) })),
      }));
    expect(strip(c)).toEqual(strip(t));
    // Sanity: 13 work contents (function 2 has four) × 2 skill items at every level.
    expect(c.functions.map((f) => f.workContents.length)).toEqual([3, 4, 3, 3]);
    expect(skillsOf(cat, level)).toHaveLength(26);
  });

  it('weights of 4.1 and 4.2 equal the text and sum to 100 per level', () => {
    const w = parseStandardWeights(text);
    const names = cat.functions.map((f) => f.zh);
    LEVELS.forEach((level, i) => {
      const p = cat.weights.practical[level];
      expect(FUNCTION_CODES.map((f) => p[f])).toEqual(names.map((n) => w.practical[n]![i]));
      expect(p['1'] + p['2'] + p['3'] + p['4']).toBe(100);
      expect(w.practical['合计']![i]).toBe(100);
      const th = cat.weights.theory[level];
      expect([th.ethics, th.foundations, ...FUNCTION_CODES.map((f) => th.functions[f])]).toEqual(
        ['职业道德', '基础知识', ...names].map((n) => w.theory[n]![i]),
      );
      expect(th.ethics + th.foundations + FUNCTION_CODES.reduce((a, f) => a + th.functions[f], 0)).toBe(100);
    });
    expect(cat.weights.practical.junior).toEqual({ '1': 25, '2': 30, '3': 20, '4': 25 });
  });

  it('exam rules match section 1.5', () => {
    expect(text).toContain('成绩皆达 60 分（含）以上者算合格');
    expect(cat.exam.passMark).toBe(60);
    expect(text).toContain('初级不少于 90 分钟，中级/高级不少于 120 分钟');
    expect(cat.exam.practicalMinMinutes).toEqual({ junior: 90, intermediate: 120, senior: 120 });
    expect(text).toContain('考评人员为 3 人以上单数');
    expect(cat.exam.examiners).toEqual({ min: 3, odd: true });
    for (const r of cat.exam.rules) expect(text).toContain(r.zh);
  });
});

describe('catalogue schema', () => {
  const raw = readFileSync(DEFAULT_CATALOGUE_PATH, 'utf8');
  it('finds skills by level and code', () => {
    expect(findSkill(cat, 'junior', '1.2.1')?.zh).toContain('量化');
    expect(findSkill(cat, 'junior', '1.2.9')).toBeUndefined();
  });
  const issuesFor = (bad: string): { path: string; problem: string }[] => {
    try {
      parseCatalogue(bad, 'x.yaml');
    } catch (e) {
      expect(isDeploylabError(e) && e.code).toBe('CATALOGUE_INVALID');
      return (e as { details: { issues: { path: string; problem: string }[] } }).details.issues;
    }
    return expect.unreachable();
  };
  it('rejects a typo (strict keys) with its path', () => {
    const issues = issuesFor(raw.replace('workContents:', 'workContent:'));
    expect(issues).toContainEqual({ source: 'x.yaml', path: 'levels[0].functions[0]', problem: 'unknown key(s): workContent' });
  });
  it('rejects a skill numbered out of order', () => {
    const issues = issuesFor(raw.replace('code: 1.1.2', 'code: 1.1.3'));
    expect(issues.some((i) => /expected 1\.1\.2, found 1\.1\.3/.test(i.problem))).toBe(true);
  });
  it('rejects weights that do not sum to 100', () => {
    const bad = raw.replace(/junior:\n {6}"1": 25/, 'junior:\n      "1": 26');
    expect(bad).not.toBe(raw);
    expect(() => parseCatalogue(bad, 'x.yaml')).toThrow(/sum to 100/);
  });
});
