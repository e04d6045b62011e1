import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { parseYamlOrThrow } from '../core/validation.js';

/**
 * The skill standard as data (tasks/standard/catalogue.yaml): levels, occupational functions,
 * work contents, skill items, the weight tables of section 4 and the exam rules of section 1.5.
 */
export const LEVELS = ['junior', 'intermediate', 'senior'] as const;
export const LevelSchema = z.enum(LEVELS);
export type Level = z.infer<typeof LevelSchema>;

export const FUNCTION_CODES = ['1', '2', '3', '4'] as const;
export type FunctionCode = (typeof FUNCTION_CODES)[number];

export const BilingualSchema = z.strictObject({ zh: z.string().min(1), en: z.string().min(1) });

const SkillSchema = z.strictObject({
  code: z.string().regex(/^[1-4]\.\d\.\d$/),
  zh: z.string().min(1),
  en: z.string().min(1),
});
const WorkContentSchema = z.strictObject({
  code: z.string().regex(/^[1-4]\.\d$/),
  zh: z.string().min(1),
  en: z.string().min(1),
  skills: z.array(SkillSchema).min(1),
});
const FunctionSchema = z.strictObject({
  code: z.enum(FUNCTION_CODES),
  zh: z.string().min(1),
  en: z.string().min(1),
  workContents: z.array(WorkContentSchema).min(1),
});
const LevelEntrySchema = z
  .strictObject({
    code: LevelSchema,
    zh: z.enum(['初级', '中级', '高级']),
    en: z.string().min(1),
    section: z.string().regex(/^3\.[123]$/),
    functions: z.array(FunctionSchema).length(4),
  })
  .superRefine((lv, ctx) => {
    lv.functions.forEach((f, fi) => {
      if (f.code !== FUNCTION_CODES[fi]) {
        ctx.addIssue({ code: 'custom', path: ['functions', fi, 'code'], message: `expected function ${FUNCTION_CODES[fi]}, found ${f.code}` });
      }
      f.workContents.forEach((w, wi) => {
        if (w.code !== `${f.code}.${wi + 1}`) {
          ctx.addIssue({ code: 'custom', path: ['functions', fi, 'workContents', wi, 'code'], message: `expected ${f.code}.${wi + 1}, found ${w.code}` });
        }
        w.skills.forEach((s, si) => {
          if (s.code !== `${w.code}.${si + 1}`) {
            ctx.addIssue({ code: 'custom', path: ['functions', fi, 'workContents', wi, 'skills', si, 'code'], message: `expected ${w.code}.${si + 1}, found ${s.code}` });
          }
        });
      });
    });
  });

const Percent = z.number().int().min(0).max(100);
const FunctionWeightsSchema = z
  .strictObject({ '1': Percent, '2': Percent, '3': Percent, '4': Percent })
  .refine((w) => w['1'] + w['2'] + w['3'] + w['4'] === 100, { message: 'function weights must sum to 100' });
const TheoryWeightsSchema = z
  .strictObject({
    ethics: Percent,
    foundations: Percent,
    functions: z.strictObject({ '1': Percent, '2': Percent, '3': Percent, '4': Percent }),
  })
  .refine((w) => w.ethics + w.foundations + w.functions['1'] + w.functions['2'] + w.functions['3'] + w.functions['4'] === 100, {
    message: 'theory weights must sum to 100',
  });
const PerLevel = <T extends z.ZodType>(t: T) => z.strictObject({ junior: t, intermediate: t, senior: t });

export const CatalogueSchema = z
  .strictObject({
    standard: z.strictObject({ title: BilingualSchema, edition: BilingualSchema, issuer: BilingualSchema }),
    /** Function names as the section-4 weight tables give them. */
    functions: z
      .array(z.strictObject({ code: z.enum(FUNCTION_CODES), zh: z.string().min(1), en: z.string().min(1) }))
      .length(4),
    weights: z.strictObject({
      /** 4.1 理论知识权重表 */
      theory: PerLevel(TheoryWeightsSchema),
      /** 4.2 技能要求权重表: what the practical score uses. */
      practical: PerLevel(FunctionWeightsSchema),
    }),
    exam: z.strictObject({
      marksOutOf: z.literal(100),
      /** 60 分（含）以上 passes: inclusive. */
      passMark: z.number().positive(),
      theoryMinMinutes: z.number().int().positive(),
      practicalMinMinutes: PerLevel(z.number().int().positive()),
      /** 考评人员为 3 人以上单数 */
      examiners: z.strictObject({ min: z.number().int().positive(), odd: z.boolean() }),
      invigilators: z.strictObject({ maxCandidatesPerInvigilator: z.number().int().positive(), minPerRoom: z.number().int().positive() }),
      restoreEnvironmentAfterExam: z.boolean(),
      rules: z.array(z.strictObject({ section: z.string(), zh: z.string().min(1), en: z.string().min(1) })).min(1),
    }),
    levels: z.array(LevelEntrySchema).length(3),
  })
  .superRefine((c, ctx) => {
    c.levels.forEach((l, i) => {
      if (l.code !== LEVELS[i]) ctx.addIssue({ code: 'custom', path: ['levels', i, 'code'], message: `expected ${LEVELS[i]}, found ${l.code}` });
    });
  });

export type Catalogue = z.output<typeof CatalogueSchema>;
export type CatalogueLevel = Catalogue['levels'][number];
export type CatalogueFunction = CatalogueLevel['functions'][number];

export interface SkillRef {
  level: Level;
  functionCode: FunctionCode;
  workContentCode: string;
  code: string;
  zh: string;
  en: string;
}

export const DEFAULT_CATALOGUE_PATH = fileURLToPath(new URL('../../tasks/standard/catalogue.yaml', import.meta.url));

export function parseCatalogue(text: string, source: string): Catalogue {
  return parseYamlOrThrow(CatalogueSchema, text, { source, code: 'CATALOGUE_INVALID', what: { zh: '标准目录', en: 'standard catalogue' } });
}

const cache = new Map<string, Catalogue>();

/** The catalogue; read and validated once per path. */
export function loadCatalogue(path: string = DEFAULT_CATALOGUE_PATH): Catalogue {
  let c = cache.get(path);
  if (!c) {
    c = parseCatalogue(readFileSync(path, 'utf8'), path);
    cache.set(path, c);
  }
  return c;
}

export function levelOf(c: Catalogue, level: Level): CatalogueLevel {
  const l = c.levels.find((x) => x.code === level);
  if (!l) throw new Error(`level ${level} missing from a validated catalogue`);
  return l;
}

/** Every skill item of a level, flattened. */
export function skillsOf(c: Catalogue, level: Level): SkillRef[] {
  return levelOf(c, level).functions.flatMap((f) =>
    f.workContents.flatMap((w) =>
      w.skills.map((s) => ({ level, functionCode: f.code, workContentCode: w.code, code: s.code, zh: s.zh, en: s.en })),
    ),
  );
}

export function findSkill(c: Catalogue, level: Level, code: string): SkillRef | undefined {
  return skillsOf(c, level).find((s) => s.code === code);
}

/** "2.2.1" → "2" */
export function functionOfSkill(code: string): FunctionCode {
  const f = code.split('.')[0];
  if (f === '1' || f === '2' || f === '3' || f === '4') return f;
  throw new Error(`not a skill code: ${code}`);
}
