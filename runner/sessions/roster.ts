import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { z } from 'zod';
import { DeploylabError, type ErrorCode } from '../core/errors.js';

/**
 * The candidate roster: a CSV of candidate number, name and ID number, one candidate a row, an
 * optional header row. Everything wrong is gathered and reported with its row before a session is
 * opened. Files must be UTF-8 (a BOM is fine): a file Excel saved as GBK/ANSI is detected (strict
 * UTF-8 decoding fails) and refused with a hint to re-save it as "CSV UTF-8"; it is not converted,
 * because guessing an encoding can silently garble names on the seat cards.
 */

export interface RosterEntry {
  /** Line in the file (1-based), for messages. */
  line: number;
  candidateNo: string;
  name: string;
  idNumber: string;
}

export interface RosterProblem {
  line: number;
  column?: string;
  problem: string;
  found?: string;
}

const HEADER_WORDS = /^(candidate|no|number|name|id|准考证|考号|考生|姓名|身份证|证件)/i;

/** A cell that a spreadsheet would run as a formula (CSV injection): = + - @ or a leading tab/CR. */
export function looksLikeFormula(cell: string): boolean {
  return /^[=+\-@\t\r]/.test(cell);
}

const ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK = '10X98765432';

/** GB 11643 check digit of an 18-character resident ID number. */
export function residentIdValid(id: string): boolean {
  if (!/^\d{17}[\dX]$/i.test(id)) return false;
  const sum = ID_WEIGHTS.reduce((a, w, i) => a + w * Number(id[i]), 0);
  return ID_CHECK[sum % 11] === id[17]!.toUpperCase();
}

const RowSchema = z.object({
  candidateNo: z.string().regex(/^[A-Za-z0-9-]{1,32}$/, 'candidate number: letters, digits and "-", at most 32'),
  name: z.string().min(1).max(64, 'name: at most 64 characters'),
  idNumber: z
    .string()
    .regex(/^[A-Za-z0-9]{5,32}$/, 'ID number: 5-32 letters or digits (a value like 1.1E+17 means Excel turned it into a number: format the column as text)')
    .refine((v) => !/^\d{17}[\dXx]$/.test(v) || residentIdValid(v), 'ID number: the check digit of this 18-digit resident ID is wrong'),
});

const COLUMNS = ['candidateNo', 'name', 'idNumber'] as const;

function rosterError(file: string, problems: RosterProblem[], code: ErrorCode = 'ROSTER_INVALID', hint?: { zh: string; en: string }): DeploylabError {
  const lines = problems.map((p) => `line ${p.line}${p.column ? ` [${p.column}]` : ''}: ${p.problem}${p.found !== undefined ? ` (found: ${JSON.stringify(p.found)})` : ''}`);
  return new DeploylabError({
    code,
    fault: 'config',
    message: {
      zh: `考生名单 ${file} 有 ${problems.length} 处问题：\n  ${lines.join('\n  ')}`,
      en: `roster ${file} has ${problems.length} problem(s):\n  ${lines.join('\n  ')}`,
    },
    hint: hint ?? { zh: '按行号修改名单后重试', en: 'fix the listed rows and retry' },
    details: { file, problems },
  });
}

/** Parse and check a roster from its bytes. */
export function parseRoster(bytes: Buffer, file = 'roster.csv'): RosterEntry[] {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw rosterError(
      file,
      [{ line: firstBadLine(bytes), problem: 'not UTF-8 text (probably GBK/ANSI saved by Excel)' }],
      'ROSTER_NOT_UTF8',
      {
        zh: '在 Excel 中“另存为”并选择“CSV UTF-8（逗号分隔）”，或用 iconv -f GBK -t UTF-8 转换后重试',
        en: 'in Excel use "Save As" → "CSV UTF-8 (Comma delimited)", or convert with iconv -f GBK -t UTF-8, then retry',
      },
    );
  }
  let records: { record: string[]; info: { lines: number } }[];
  try {
    records = parse(text, { relax_column_count: true, skip_empty_lines: true, trim: true, info: true, bom: true }) as unknown as typeof records;
  } catch (e) {
    const line = (e as { lines?: number }).lines ?? 0;
    throw rosterError(file, [{ line, problem: `CSV syntax: ${(e as Error).message}` }], 'ROSTER_CSV_SYNTAX');
  }
  if (records.length > 0 && records[0]!.record.some((c) => HEADER_WORDS.test(c)) && !records[0]!.record.some((c) => /\d{5,}/.test(c))) {
    records = records.slice(1);
  }
  const problems: RosterProblem[] = [];
  const entries: RosterEntry[] = [];
  for (const { record, info } of records) {
    const line = info.lines;
    if (record.every((c) => c === '')) continue;
    if (record.length !== 3) {
      problems.push({ line, problem: `expected 3 columns (candidate number, name, ID number), found ${record.length}`, found: record.join(',') });
      continue;
    }
    let bad = false;
    record.forEach((cell, i) => {
      if (cell === '') {
        problems.push({ line, column: COLUMNS[i], problem: 'empty field' });
        bad = true;
      } else if (looksLikeFormula(cell)) {
        problems.push({ line, column: COLUMNS[i], problem: 'looks like a spreadsheet formula (starts with = + - @); refused', found: cell });
        bad = true;
      }
    });
    if (bad) continue;
    const r = RowSchema.safeParse({ candidateNo: record[0], name: record[1], idNumber: record[2] });
    if (!r.success) {
      for (const i of r.error.issues) problems.push({ line, column: String(i.path[0] ?? ''), problem: i.message, found: record[COLUMNS.indexOf(i.path[0] as (typeof COLUMNS)[number])] });
      continue;
    }
    entries.push({ line, ...r.data, idNumber: r.data.idNumber.toUpperCase() });
  }
  for (const key of ['candidateNo', 'idNumber'] as const) {
    const seen = new Map<string, number[]>();
    for (const e of entries) seen.set(e[key], [...(seen.get(e[key]) ?? []), e.line]);
    for (const [value, lines] of seen) {
      if (lines.length > 1) problems.push({ line: lines[0]!, column: key, problem: `duplicate ${key === 'candidateNo' ? 'candidate number' : 'ID number'} on lines ${lines.join(', ')}`, found: value });
    }
  }
  if (entries.length === 0 && problems.length === 0) problems.push({ line: 1, problem: 'no candidates in the roster' });
  if (problems.length > 0) throw rosterError(file, problems.sort((a, b) => a.line - b.line));
  return entries;
}

function firstBadLine(bytes: Buffer): number {
  let line = 1;
  let start = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i === bytes.length || bytes[i] === 0x0a) {
      try {
        new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(start, i));
      } catch {
        return line;
      }
      line++;
      start = i + 1;
    }
  }
  return 1;
}

export function readRoster(file: string): RosterEntry[] {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (cause) {
    throw new DeploylabError({
      code: 'ROSTER_UNREADABLE',
      fault: 'config',
      message: { zh: `无法读取考生名单 ${file}`, en: `cannot read roster ${file}` },
      cause,
    });
  }
  return parseRoster(bytes, file);
}
