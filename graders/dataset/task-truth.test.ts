/**
 * The dataset task's truth (the records its checks expect, written in its task.yaml) derived
 * again here from the task's own raw documents (setup/), by the sheet's rules, independently of
 * the reference solution: the expected records cannot drift from the documents or the sheet.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DatasetParamsSchema } from './params.js';

const dir = fileURLToPath(new URL('../../tasks/junior/dataset/', import.meta.url));
type Rec = { instruction: string; input: string; output: string };

const ENTITIES: Record<string, string> = { nbsp: ' ', lt: '<', gt: '>', quot: '"', amp: '&' };

/** The sheet's rules 4-6 (rules 1-3 are per document, below). */
function norm(s: string, question = false): string {
  const half = s.replace(/[０-９Ａ-Ｚａ-ｚ]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xfee0));
  const t = half.replace(/[\s\u00a0\u3000]+/g, ' ').trim();
  return question ? t.replace(/\?$/, '？') : t;
}

function derive(): { pairs: Rec[]; truth: Rec[] } {
  const pairs: Rec[] = [];
  const md = readFileSync(`${dir}setup/faq.md`, 'utf8');
  for (const m of md.matchAll(/^#+\s*Q\s*[:：](.*)\n+A\s*[:：](.*)$/gm)) {
    const unmark = (s: string): string => s.replaceAll('**', '').replaceAll('`', '');
    pairs.push({ instruction: norm(unmark(m[1]!), true), input: '', output: norm(unmark(m[2]!)) });
  }
  const html = readFileSync(`${dir}setup/help.html`, 'utf8');
  const dl = /<dl class="faq">([\s\S]*?)<\/dl>/.exec(html)![1]!;
  const text = (s: string): string => s.replace(/<[^>]+>/g, '').replace(/&(\w+);/g, (e, n: string) => ENTITIES[n] ?? e);
  for (const m of dl.matchAll(/<dt[^>]*>([\s\S]*?)<\/dt>\s*<dd[^>]*>([\s\S]*?)<\/dd>/g)) {
    pairs.push({ instruction: norm(text(m[1]!), true), input: '', output: norm(text(m[2]!)) });
  }
  const tickets = new TextDecoder('gb18030', { fatal: true }).decode(readFileSync(`${dir}setup/tickets.txt`));
  for (const block of tickets.split(/^-{10,}\r?$/m)) {
    const field = (k: string): string | undefined => new RegExp(`^${k}[:：](.*)$`, 'm').exec(block)?.[1];
    const q = field('问');
    if (q === undefined) continue;
    pairs.push({ instruction: norm(q, true), input: norm(field('补充') ?? ''), output: norm(field('答')!) });
  }
  const seen = new Map(pairs.map((p) => [JSON.stringify([p.instruction, p.input, p.output]), p]));
  return { pairs, truth: [...seen.values()] };
}

const sorted = (rs: Rec[]): string[] => rs.map((r) => JSON.stringify([r.instruction, r.input, r.output])).sort();

describe('dataset task: the raw documents and the expected records', () => {
  const { pairs, truth } = derive();
  const task = parse(readFileSync(`${dir}task.yaml`, 'utf8')) as { checks: { id: string; probe: { truth: Rec[] } }[] };

  it('holds 18 pairs, 4 of them repeats, in three documents', () => {
    expect(pairs).toHaveLength(18);
    expect(truth).toHaveLength(14);
    // Each repeat is written differently in the raw text: deduplicating before normalising misses it.
    const md = readFileSync(`${dir}setup/faq.md`, 'utf8');
    expect(md).toContain('**max_concurrency**');
    expect(md).toContain('８ 个请求');
  });

  it('gives every check exactly the derived truth', () => {
    expect(task.checks.map((c) => c.id).sort()).toEqual(['coverage', 'encoding', 'format', 'unique']);
    for (const c of task.checks) {
      expect(sorted(c.probe.truth), c.id).toEqual(sorted(truth));
      expect(() => DatasetParamsSchema.parse(c.probe)).not.toThrow();
    }
  });

  it('has a GBK ticket file that is not UTF-8, and two examples on the sheet that are records of the truth', () => {
    expect(() => new TextDecoder('utf-8', { fatal: true }).decode(readFileSync(`${dir}setup/tickets.txt`))).toThrow();
    for (const lang of ['zh', 'en']) {
      const sheet = readFileSync(`${dir}instructions.${lang}.md`, 'utf8');
      const block = /```json\n([\s\S]*?)```/.exec(sheet)![1]!;
      const examples = block.trim().split('\n').map((l) => JSON.parse(l) as Rec);
      expect(examples).toHaveLength(2);
      for (const e of examples) expect(sorted(truth)).toContain(sorted([e])[0]);
      // Fewer than half the questions: examples alone are never judged.
      expect(examples.length).toBeLessThan(truth.length / 2);
    }
  });
});
