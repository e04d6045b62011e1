import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isDeploylabError, type DeploylabError } from '../../runner/core/errors.js';
import { parseRoster, readRoster, residentIdValid, type RosterProblem } from '../../runner/sessions/roster.js';

const fx = (name: string): string => new URL(`./fixtures/${name}`, import.meta.url).pathname;

function failure(name: string): DeploylabError {
  try {
    readRoster(fx(name));
  } catch (e) {
    if (isDeploylabError(e)) return e;
    throw e;
  }
  throw new Error(`${name} was accepted`);
}
const problems = (e: DeploylabError): RosterProblem[] => (e.details as { problems: RosterProblem[] }).problems;

describe('roster', () => {
  it('reads a UTF-8 file with BOM, CRLF and a Chinese header row', () => {
    const r = readRoster(fx('ok-bom.csv'));
    expect(r.map((x) => [x.line, x.candidateNo, x.name, x.idNumber])).toEqual([
      [2, '2025001', '张三', '11010519491231002X'],
      [3, '2025002', '李四', '110105194912310038'],
      [4, '2025003', '王五', 'E12345678'],
    ]);
  });

  it('refuses a GBK file saved by Excel and says how to re-save it', () => {
    const e = failure('gbk-excel.csv');
    expect(e.code).toBe('ROSTER_NOT_UTF8');
    expect(problems(e)[0]!.line).toBe(1);
    expect(e.hint?.en).toMatch(/CSV UTF-8/);
    // The same bytes re-encoded as UTF-8 are accepted: the refusal is about the encoding only.
    const utf8 = Buffer.from(new TextDecoder('gbk').decode(readFileSync(fx('gbk-excel.csv'))), 'utf8');
    expect(parseRoster(utf8)).toHaveLength(3);
  });

  it('lists every duplicate candidate number and ID number with their lines', () => {
    const e = failure('duplicates.csv');
    expect(e.code).toBe('ROSTER_INVALID');
    const p = problems(e);
    expect(p).toHaveLength(2);
    expect(p.find((x) => x.column === 'candidateNo')!.problem).toMatch(/lines 2, 4/);
    expect(p.find((x) => x.column === 'idNumber')!.problem).toMatch(/lines 2, 3/);
  });

  it('names the empty fields by line and column', () => {
    const p = problems(failure('empty-fields.csv'));
    expect(p.map((x) => [x.line, x.column, x.problem])).toEqual([
      [2, 'name', 'empty field'],
      [3, 'idNumber', 'empty field'],
    ]);
  });

  it('refuses formula-looking cells (CSV injection)', () => {
    const p = problems(failure('formula.csv'));
    expect(p.map((x) => [x.line, x.column])).toEqual([
      [2, 'name'],
      [3, 'name'],
    ]);
    expect(p[0]!.found).toBe("=cmd|' /C calc'!A0");
  });

  it('catches Excel number mangling and a wrong resident-ID check digit', () => {
    const p = problems(failure('excel-number.csv'));
    expect(p).toHaveLength(2);
    expect(p[0]!.problem).toMatch(/Excel/);
    expect(p[1]!.problem).toMatch(/check digit/);
  });

  it('reports CSV syntax errors', () => {
    expect(failure('bad-quote.csv').code).toBe('ROSTER_CSV_SYNTAX');
  });

  it('checks the GB 11643 check digit', () => {
    expect(residentIdValid('11010519491231002X')).toBe(true);
    expect(residentIdValid('11010519491231002x')).toBe(true);
    expect(residentIdValid('110105194912310037')).toBe(false);
  });

  it('refuses an empty roster and a row with the wrong number of columns', () => {
    expect(() => parseRoster(Buffer.from(''))).toThrow(/no candidates/);
    const e = (() => {
      try {
        parseRoster(Buffer.from('2025001,张三\n'));
      } catch (x) {
        return x as DeploylabError;
      }
      throw new Error('accepted');
    })();
    expect(problems(e)[0]!.problem).toMatch(/expected 3 columns/);
  });
});
