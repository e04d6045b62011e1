/**
 * Reads the skill tables (section 3) and the weight tables (section 4) straight out of the
 * standard's plain text. Used only to prove the catalogue YAML against the text; it knows the
 * text's extraction quirks (HTML <p> cells, rows split across page breaks, footer lines).
 */
export interface TextSkill {
  code: string;
  zh: string;
}
export interface TextWorkContent {
  code: string;
  zh: string;
  skills: TextSkill[];
}
export interface TextFunction {
  code: string;
  zh: string;
  workContents: TextWorkContent[];
}
export interface TextLevel {
  section: string;
  zh: string;
  functions: TextFunction[];
}
export interface TextWeights {
  /** 4.1: row label → [junior, intermediate, senior] */
  theory: Record<string, number[]>;
  /** 4.2 */
  practical: Record<string, number[]>;
}

const LEVEL_HEAD = /^3\.([123]) (初级|中级|高级)\s*$/;
const FUNCTION_CELL = /^([1-4])\. ?([\u4e00-\u9fff]+)/;
const WORK_CELL = /^(\d\.\d) (.+)$/;
const ITEM = /(\d\.\d\.\d) /g;

function cell(s: string | undefined): string {
  return (s ?? '').replace(/<\/?p>/g, '').trim();
}

function splitItems(text: string): TextSkill[] {
  const starts = [...text.matchAll(ITEM)];
  return starts.map((m, i) => {
    const from = m.index + m[0].length;
    const to = i + 1 < starts.length ? starts[i + 1]!.index : text.length;
    return { code: m[1]!, zh: text.slice(from, to).trim() };
  });
}

export function parseStandardLevels(text: string): TextLevel[] {
  const lines = text.split('\n');
  const levels: TextLevel[] = [];
  let level: TextLevel | undefined;
  // Raw skill-column text per work content, continuations appended before splitting.
  let raw: { wc: TextWorkContent; skills: string } | undefined;
  const flush = (): void => {
    if (raw) raw.wc.skills = splitItems(raw.skills);
    raw = undefined;
  };
  for (const line of lines) {
    const head = LEVEL_HEAD.exec(line);
    if (head) {
      flush();
      level = { section: `3.${head[1]}`, zh: head[2]!, functions: [] };
      levels.push(level);
      continue;
    }
    if (/^4 权重表/.test(line)) {
      flush();
      level = undefined;
      continue;
    }
    if (!level || !line.includes('\t')) continue;
    const cols = line.split('\t');
    if (cols[0] === '职业功能') continue;
    const fn = FUNCTION_CELL.exec(cell(cols[0]));
    const wc = WORK_CELL.exec(cell(cols[1]));
    if (fn) {
      flush();
      level.functions.push({ code: fn[1]!, zh: fn[2]!, workContents: [] });
    }
    if (wc) {
      flush();
      const f = level.functions.at(-1);
      if (!f) throw new Error(`work content ${wc[1]} before any function`);
      const w: TextWorkContent = { code: wc[1]!, zh: wc[2]!.trim(), skills: [] };
      f.workContents.push(w);
      raw = { wc: w, skills: cell(cols[2]) };
    } else if (raw && cell(cols[0]) === '' && cell(cols[1]) === '') {
      // A row broken by a page: the rest of the skill text, glued on without a space.
      raw.skills += cell(cols[2]);
    }
  }
  flush();
  return levels;
}

export function parseStandardWeights(text: string): TextWeights {
  const section = (from: RegExp, to: RegExp | undefined): string[] => {
    const lines = text.split('\n');
    const a = lines.findIndex((l) => from.test(l));
    const b = to ? lines.findIndex((l, i) => i > a && to.test(l)) : lines.length;
    return lines.slice(a, b === -1 ? lines.length : b);
  };
  const table = (ls: string[]): Record<string, number[]> => {
    const out: Record<string, number[]> = {};
    for (const l of ls) {
      const cols = l.split('\t').map((c) => c.trim()).filter((c) => c !== '');
      const nums = cols.slice(-3).map(Number);
      if (cols.length >= 4 && nums.every((n) => Number.isInteger(n))) out[cols[cols.length - 4]!] = nums;
    }
    return out;
  };
  return {
    theory: table(section(/^4\.1 /, /^4\.2 /)),
    practical: table(section(/^4\.2 /, undefined)),
  };
}
