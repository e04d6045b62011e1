import { z } from 'zod';
import { AbsolutePath, ContainerRole, Timeout } from '../params.js';

/** What one `dataset` check judges of the candidate's JSONL file. */
export const DATASET_ASPECTS = ['encoding', 'format', 'coverage', 'unique'] as const;

export const DatasetParamsSchema = z
  .strictObject({
    kind: z.literal('dataset'),
    container: ContainerRole.default('workspace'),
    /** The candidate's JSON Lines file (one record per line). */
    path: AbsolutePath,
    /** Every record has exactly these keys, each a string (Alpaca by default). */
    fields: z.array(z.string().min(1)).min(1).default(['instruction', 'input', 'output']),
    /**
     * The records the file must hold, already normalised: the grader's own truth, written in the
     * task file (never in the seat) and re-derived from the task's raw documents by its test.
     */
    truth: z.array(z.record(z.string(), z.string())).min(1),
    /**
     * - encoding: strict UTF-8, no BOM, no U+FFFD, no mojibake (CJK text decoded with a wrong code page);
     * - format: LF lines, no blank line, each line one JSON object with exactly `fields`, strings,
     *   the first and last field non-empty, no key repeated;
     * - coverage: every truth record present, field by field equal;
     * - unique: no record twice, none that is not in the truth.
     */
    aspect: z.enum(DATASET_ASPECTS),
    /**
     * The file is judged at all only when it holds this dataset: at least `minShare` of the
     * truth's `field` values (the questions) appear among its records. A file of a few copied
     * examples, or of well-formed invented lines, earns nothing for being well formed.
     */
    recognise: z
      .strictObject({ field: z.string().min(1).default('instruction'), minShare: z.number().gt(0).max(1).default(0.5) })
      .prefault({}),
    maxBytes: z.number().int().positive().max(16 * 1024 * 1024).default(1024 * 1024),
    timeoutMs: Timeout.default(10_000),
  })
  .superRefine((p, ctx) => {
    const want = [...p.fields].sort().join('\0');
    if (new Set(p.fields).size !== p.fields.length) ctx.addIssue({ code: 'custom', path: ['fields'], message: 'a field named twice' });
    if (!p.fields.includes(p.recognise.field)) ctx.addIssue({ code: 'custom', path: ['recognise', 'field'], message: 'not one of fields' });
    const seen = new Set<string>();
    p.truth.forEach((r, i) => {
      if (Object.keys(r).sort().join('\0') !== want) ctx.addIssue({ code: 'custom', path: ['truth', i], message: `a truth record needs exactly the keys ${p.fields.join(', ')}` });
      const key = JSON.stringify(p.fields.map((f) => r[f]));
      if (seen.has(key)) ctx.addIssue({ code: 'custom', path: ['truth', i], message: 'a truth record given twice' });
      seen.add(key);
    });
  });
