import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Test support: reads the real nvidia-smi captures in graders/parsers/__fixtures__/nvidia-smi. A capture is a
 * header, then sections framed by `####` rules, each opened by a title line `# <phase> :: <what>`
 * and a banner `# $ nvidia-smi ...` naming the exact command; the body runs to the next rule.
 */
export const CAPTURE_DIR = fileURLToPath(new URL('./__fixtures__/nvidia-smi/', import.meta.url));

export interface CaptureSection {
  /** `capabilities`, `idle` or `load`. */
  phase: string;
  title: string;
  /** The command after `$ `, e.g. `nvidia-smi -L`. */
  command: string;
  body: string;
}

const RULE = /^#{20,}\s*$/;

export function readCapture(file: string): CaptureSection[] {
  const lines = readFileSync(CAPTURE_DIR + file, 'utf8').split('\n');
  const sections: CaptureSection[] = [];
  let i = 0;
  while (i < lines.length) {
    // A section opens with: rule, `# phase :: what`, `# $ command`, rule.
    const title = /^# (\S+) :: (.*)$/.exec(lines[i + 1] ?? '');
    const banner = /^# \$ (.*)$/.exec(lines[i + 2] ?? '');
    if (RULE.test(lines[i]!) && title && banner && RULE.test(lines[i + 3] ?? '')) {
      let j = i + 4;
      while (j < lines.length && !RULE.test(lines[j]!)) j++;
      sections.push({
        phase: title[1]!,
        title: title[2]!,
        command: banner[1]!.trim(),
        body: lines.slice(i + 4, j).join('\n').trim() + '\n',
      });
      i = j;
    } else i++;
  }
  return sections;
}

/** The body of the section whose command starts with `commandPrefix`, in the given phase. */
export function section(file: string, commandPrefix: string, phase?: string): string {
  const found = readCapture(file).filter(
    (s) => s.command.startsWith(commandPrefix) && (phase === undefined || s.phase === phase),
  );
  if (found.length !== 1) {
    throw new Error(`${file}: ${found.length} sections match ${JSON.stringify(commandPrefix)} in phase ${phase ?? '(any)'}`);
  }
  return found[0]!.body;
}

export function captureFiles(): string[] {
  return readdirSync(CAPTURE_DIR).filter((f) => f.endsWith('.txt'));
}
