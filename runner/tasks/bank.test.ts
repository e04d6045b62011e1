import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { drawCount, drawnPaperId, drawPaper } from './bank.js';
import { DEFAULT_TASKS_ROOT, loadTaskTree, validatePaths } from './loader.js';
import { PaperSchema, type Bank } from './task-schema.js';

const BANK: Bank = {
  id: 'b',
  level: 'junior',
  title: { zh: '题库', en: 'Bank' },
  durationMinutes: 90,
  slots: [
    { function: '1', pick: 2, from: ['a1', 'a2', 'a3', 'a4'] },
    { function: '2', pick: 1, from: ['b1', 'b2', 'b3'] },
  ],
};

describe('drawing a paper from a bank', () => {
  it('the same seed draws the same paper; each slot gives exactly its pick, in the bank’s order', () => {
    const p = drawPaper(BANK, 42);
    expect(drawPaper(BANK, 42)).toEqual(p);
    expect(p.id).toBe('b-draw-000042');
    expect(PaperSchema.parse(p)).toEqual(p);
    const [one, two] = [p.tasks.filter((t) => t.startsWith('a')), p.tasks.filter((t) => t.startsWith('b'))];
    expect(one).toHaveLength(2);
    expect(two).toHaveLength(1);
    expect(p.tasks).toEqual([...one, ...two]);
    expect(one).toEqual([...one].sort());
  });

  it('every combination is reachable and none is much favoured (2000 seeds, 18 papers)', () => {
    expect(drawCount(BANK)).toBe(6 * 3);
    const seen = new Map<string, number>();
    for (let seed = 1; seed <= 2000; seed++) {
      const k = drawPaper(BANK, seed).tasks.join(',');
      seen.set(k, (seen.get(k) ?? 0) + 1);
    }
    expect(seen.size).toBe(18);
    // Expected about 111 each; a biased draw (always the first tasks) would give one key 2000.
    for (const n of seen.values()) expect(n).toBeGreaterThan(50);
  });

  it('ids carry the seed with six digits', () => {
    expect(drawnPaperId('junior', 7)).toBe('junior-draw-000007');
  });
});

describe('bank files', () => {
  const root = mkdtempSync(join(tmpdir(), 'dl-bank-'));
  cpSync(DEFAULT_TASKS_ROOT, root, { recursive: true });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('the project’s junior bank is valid and every draw covers all four functions', () => {
    const tree = loadTaskTree(DEFAULT_TASKS_ROOT);
    const bank = tree.banks.find((b) => b.bank.id === 'junior')?.bank;
    expect(bank).toBeDefined();
    expect(tree.problems.filter((p) => p.file.includes('/banks/'))).toEqual([]);
    const byId = new Map(tree.tasks.map((t) => [t.task.id, t.task]));
    for (let seed = 1; seed <= 200; seed++) {
      const fns = new Set(drawPaper(bank!, seed).tasks.flatMap((id) => byId.get(id)!.checks.map((c) => c.skill.split('.')[0])));
      expect([...fns].sort()).toEqual(['1', '2', '3', '4']);
    }
  });

  it('reports every problem of a bad bank at once, with its code and place', () => {
    const file = join(root, 'banks', 'bad.yaml');
    writeFileSync(
      file,
      [
        'id: wrong-id',
        'level: junior',
        'title: { zh: 坏题库, en: Bad bank }',
        'durationMinutes: 60',
        'slots:',
        '  - function: "1"',
        '    pick: 3',
        '    from: [quantize, serve]',
        '  - function: "2"',
        '    pick: 1',
        '    from: [quantize, nosuch]',
        '',
      ].join('\n'),
    );
    const codes = validatePaths([file], root).problems.map((p) => `${p.code} ${p.path}`);
    expect(codes.sort()).toEqual(
      [
        'BANK_ID_MISMATCH id',
        'BANK_DURATION_SHORT durationMinutes',
        'BANK_PICK_TOO_MANY slots[0].pick',
        // serve grades 2.2.x only: drawn into function 1's slot it would evidence nothing there.
        'BANK_SLOT_FUNCTION slots[0].from[1]',
        'BANK_DUPLICATE_TASK slots[1].from[0]',
        'BANK_SLOT_FUNCTION slots[1].from[0]',
        'BANK_UNKNOWN_TASK slots[1].from[1]',
        'BANK_FUNCTION_UNCOVERED slots',
        'BANK_FUNCTION_UNCOVERED slots',
      ].sort(),
    );
    // A misspelt key is a schema problem, as in every other file of the tree.
    writeFileSync(file, readFileSync(file, 'utf8').replace('pick: 3', 'pik: 3'));
    expect(validatePaths([file], root).problems.map((p) => p.code)).toContain('BANK_SCHEMA');
  });
});
