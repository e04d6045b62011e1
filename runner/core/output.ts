import type { Lang } from './errors.js';

/** Results for machines go to stdout as one JSON document; text for people goes to stdout too. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

export function printText(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}

/** Pick the reader's language; Chinese readers get the English beside it. */
export function say(lang: Lang, zh: string, en: string): string {
  return lang === 'zh' ? `${zh} (${en})` : en;
}

/** Plain-text table with columns padded by display width (CJK characters count double). */
export function table(headers: string[], rows: string[][]): string {
  const width = (s: string): number => {
    let w = 0;
    for (const ch of s) w += /[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]/u.test(ch) ? 2 : 1;
    return w;
  };
  const all = [headers, ...rows];
  const widths = headers.map((_, c) => Math.max(...all.map((r) => width(r[c] ?? ''))));
  const line = (r: string[]): string =>
    r.map((cell, c) => cell + ' '.repeat(Math.max(0, widths[c]! - width(cell)))).join('  ').trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Exit codes shared by every command. */
export const EXIT = {
  ok: 0,
  /** The command ran and the answer is "no" (host not ready, check failed). */
  notReady: 1,
  /** The command could not do its work (engine down, network path broken). */
  couldNotRun: 2,
  /** Bad input: config, flags, files. */
  badInput: 3,
  bug: 70,
} as const;
