import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCatalogue, skillsOf } from './catalogue.js';
import { levelCoverage, loadNotGraded, NOT_GRADED_FILE } from './coverage.js';
import { DEFAULT_TASKS_ROOT, loadTaskTree } from './loader.js';

const cat = loadCatalogue();
const tree = loadTaskTree(DEFAULT_TASKS_ROOT, cat);
const tmp = mkdtempSync(join(tmpdir(), 'dl-coverage-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const notesIn = (name: string, yaml: string): string => {
  const root = join(tmp, name);
  mkdirSync(join(root, 'standard'), { recursive: true });
  writeFileSync(join(root, NOT_GRADED_FILE), yaml);
  return root;
};

describe('skill coverage of the task bank', () => {
  const notes = loadNotGraded(DEFAULT_TASKS_ROOT, cat);
  const junior = levelCoverage(cat, tree, 'junior', notes);

  it('an item is covered exactly when a junior task has a check naming it, with that task’s checks and points', () => {
    const skills = new Set(tree.tasks.filter((t) => t.task.level === 'junior').flatMap((t) => t.task.checks.map((c) => c.skill)));
    expect(junior.total).toBe(skillsOf(cat, 'junior').length);
    expect(junior.covered).toBe(skills.size);
    for (const i of junior.items) {
      expect(i.tasks.length > 0, i.skill.code).toBe(skills.has(i.skill.code));
      expect(i.uncovered === undefined, i.skill.code).toBe(skills.has(i.skill.code));
    }
    const quantize = junior.items.find((i) => i.skill.code === '1.2.1')!.tasks.find((t) => t.id === 'quantize')!;
    const q = tree.tasks.find((t) => t.task.id === 'quantize')!.task;
    expect(quantize.checks).toEqual(q.checks.filter((c) => c.skill === '1.2.1').map((c) => c.id));
    expect(quantize.points).toBeCloseTo(q.checks.filter((c) => c.skill === '1.2.1').reduce((a, c) => a + c.points, 0));
    expect(quantize.papers).toContain('junior-v1');
  });

  it('uncovered items say why: the recorded decision (cloud) or that no task grades them yet; no record is out of date', () => {
    const cloud = junior.items.find((i) => i.skill.code === '2.4.1')!;
    expect(cloud.tasks).toEqual([]);
    expect(cloud.uncovered?.en).toMatch(/offline/);
    const open = junior.items.filter((i) => i.tasks.length === 0 && !notes.some((n) => n.skill === i.skill.code));
    for (const i of open) expect(i.uncovered?.en).toBe('no task grades it yet');
    expect(junior.staleNotes).toEqual([]);
  });

  it('a record for an item that a task grades is reported stale; one naming no item of its level is refused', () => {
    const stale = loadNotGraded(notesIn('stale', 'notGraded:\n  - level: junior\n    skill: 1.2.1\n    reason: { zh: 不评, en: not graded }\n'), cat);
    expect(levelCoverage(cat, tree, 'junior', stale).staleNotes).toEqual(['1.2.1']);
    expect(() => loadNotGraded(notesIn('unknown', 'notGraded:\n  - level: junior\n    skill: 1.2.9\n    reason: { zh: 无, en: none }\n'), cat)).toThrow(/junior level has no skill item 1\.2\.9/);
    expect(() => loadNotGraded(notesIn('typo', 'notGraded:\n  - level: junior\n    skil: 2.4.1\n'), cat)).toThrow(/not-graded\.yaml/);
    expect(() => loadNotGraded(notesIn('syntax', 'notGraded: [\n'), cat)).toThrow(/YAML syntax error/);
    expect(loadNotGraded(join(tmp, 'none'), cat)).toEqual([]);
  });
});
