import { writeFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { z } from 'zod';
import { BankSchema, PaperSchema, TaskSchema } from './task-schema.js';

/**
 * JSON Schemas generated from the zod schemas, for editors (yaml-language-server) and other tools.
 * The zod schemas stay the authority: cross-file checks (skill codes, dependsOn, files) and
 * refinements are not expressible here.
 */
export const SCHEMA_DIR = fileURLToPath(new URL('../../tasks/schema/', import.meta.url));

export function jsonSchemas(): Record<'task.schema.json' | 'paper.schema.json' | 'bank.schema.json', string> {
  const render = (schema: z.ZodType, id: string, title: string): string => {
    // Input side: fields with defaults are optional in the files people write.
    const js = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' });
    return JSON.stringify({ $id: id, title, ...js }, null, 2) + '\n';
  };
  return {
    'task.schema.json': render(TaskSchema, 'task.schema.json', 'deploylab task (tasks/<level>/<id>/task.yaml)'),
    'paper.schema.json': render(PaperSchema, 'paper.schema.json', 'deploylab exam paper (tasks/papers/<id>.yaml)'),
    'bank.schema.json': render(BankSchema, 'bank.schema.json', 'deploylab task bank (tasks/banks/<id>.yaml)'),
  };
}

export function writeJsonSchemas(dir: string = SCHEMA_DIR): string[] {
  mkdirSync(dir, { recursive: true });
  return Object.entries(jsonSchemas()).map(([name, text]) => {
    const f = join(dir, name);
    writeFileSync(f, text);
    return f;
  });
}

// `npm run schema`
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const f of writeJsonSchemas()) process.stdout.write(`${f}\n`);
}
