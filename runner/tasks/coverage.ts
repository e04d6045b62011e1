import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { DeploylabError, type Bilingual } from '../core/errors.js';
import { parseYamlOrThrow } from '../core/validation.js';
import { BilingualSchema, LevelSchema, findSkill, skillsOf, type Catalogue, type Level, type SkillRef } from './catalogue.js';
import type { TaskTree } from './loader.js';

/**
 * Which skill items of the standard the task bank grades: every check names its skill item, so an
 * item is covered when a task at its level has a check for it. Items no task grades are listed with
 * the reason — the bank's recorded decision (tasks/standard/not-graded.yaml) or "no task yet".
 */

export const NOT_GRADED_FILE = join('standard', 'not-graded.yaml');

const NotGradedSchema = z.strictObject({
  notGraded: z
    .array(
      z.strictObject({
        level: LevelSchema,
        skill: z.string().regex(/^[1-4]\.\d\.\d$/, 'a skill item code such as 2.4.1'),
        /** Why no live task grades it here (shown to examiners beside the uncovered item). */
        reason: BilingualSchema,
      }),
    )
    .default([]),
});

export type NotGraded = z.output<typeof NotGradedSchema>['notGraded'][number];

/** The bank's decisions about items it does not grade; a file that is absent decides nothing. */
export function loadNotGraded(tasksRoot: string, catalogue: Catalogue): NotGraded[] {
  const file = join(tasksRoot, NOT_GRADED_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const entries = parseYamlOrThrow(NotGradedSchema, text, { source: file, code: 'TASKS_INVALID', what: { zh: '不评分技能项清单', en: 'list of skill items not graded' } }).notGraded;
  for (const [i, n] of entries.entries()) {
    if (!findSkill(catalogue, n.level, n.skill)) {
      throw new DeploylabError({
        code: 'TASKS_INVALID',
        fault: 'config',
        message: { zh: `${file}：notGraded.${i}：${n.level} 级没有技能项 ${n.skill}`, en: `${file}: notGraded.${i}: the ${n.level} level has no skill item ${n.skill}` },
        hint: { zh: '用 deploylab standard show --level 查看该级的技能项编号', en: 'see the level’s item codes with deploylab standard show --level' },
      });
    }
  }
  return entries;
}

export interface SkillCoverage {
  skill: SkillRef;
  /** Tasks with checks for the item: their checks, points, and the papers (not practice) that hold them. */
  tasks: { id: string; checks: string[]; points: number; papers: string[]; tampers: number; alternatives: number }[];
  /** Set when no task grades the item: the recorded reason, or that no task does yet. */
  uncovered?: Bilingual;
}

export interface LevelCoverage {
  level: Level;
  covered: number;
  total: number;
  items: SkillCoverage[];
  /** Items recorded as not graded although a task now grades them: the record is out of date. */
  staleNotes: string[];
}

const NO_TASK_YET: Bilingual = { zh: '尚无考题评分此项', en: 'no task grades it yet' };

export function levelCoverage(catalogue: Catalogue, tree: TaskTree, level: Level, notes: readonly NotGraded[]): LevelCoverage {
  const tasks = tree.tasks.filter((t) => t.task.level === level);
  const items = skillsOf(catalogue, level).map((skill): SkillCoverage => {
    const grading = tasks
      .map((t) => ({ t, checks: t.task.checks.filter((c) => c.skill === skill.code) }))
      .filter((x) => x.checks.length > 0)
      .map(({ t, checks }) => ({
        id: t.task.id,
        checks: checks.map((c) => c.id),
        points: checks.reduce((a, c) => a + c.points, 0),
        papers: tree.papers.filter((p) => !p.paper.practice && p.paper.level === level && p.paper.tasks.includes(t.task.id)).map((p) => p.paper.id),
        tampers: t.task.selfProof.tampers.length,
        alternatives: t.task.selfProof.alternatives.length,
      }));
    if (grading.length > 0) return { skill, tasks: grading };
    const note = notes.find((n) => n.level === level && n.skill === skill.code);
    return { skill, tasks: [], uncovered: note?.reason ?? NO_TASK_YET };
  });
  const covered = new Set(items.filter((i) => i.tasks.length > 0).map((i) => i.skill.code));
  return {
    level,
    covered: covered.size,
    total: items.length,
    items,
    staleNotes: notes.filter((n) => n.level === level && covered.has(n.skill)).map((n) => n.skill),
  };
}
