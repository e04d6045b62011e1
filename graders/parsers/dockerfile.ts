/**
 * Enough of a Dockerfile to tell which history entries building it leaves: the instructions of
 * the final stage (and of the stages it is built FROM), in order. An image's history beyond its
 * base must list the same instructions for the image to have been built from that file; a
 * `docker tag` of the base, an imported tarball or an image built from another file does not.
 *
 * Both builders of the seat's Docker 20.10 write one history entry per instruction except FROM:
 * the classic builder as `/bin/sh -c #(nop)  KEYWORD ...` (RUN as the command itself), BuildKit as
 * `KEYWORD ...` with the comment `buildkit.dockerfile.v0`.
 */

export interface DockerInstruction {
  keyword: string;
  /** The rest of the instruction, continuation lines joined. */
  args: string;
  line: number;
}

export interface DockerStage {
  /** FROM's image reference or the name of an earlier stage, as written (ARGs substituted). */
  from: string;
  name?: string;
  line: number;
  instructions: DockerInstruction[];
}

export interface ParsedDockerfile {
  stages: DockerStage[];
}

export class DockerfileError extends Error {
  constructor(readonly line: number, what: string) {
    super(`line ${line}: ${what}`);
  }
}

/** Logical instructions: comments and blank lines dropped, continuations joined, heredocs kept whole. */
export function parseDockerfile(text: string): ParsedDockerfile {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  let escape = '\\';
  // Parser directives: only at the very top, before any other line.
  for (const l of lines) {
    const m = /^#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$/.exec(l);
    if (!m) break;
    if (m[1]!.toLowerCase() === 'escape' && (m[2] === '`' || m[2] === '\\')) escape = m[2];
  }
  const out: DockerInstruction[] = [];
  let i = 0;
  while (i < lines.length) {
    const start = i;
    let l = lines[i++]!;
    if (/^\s*(#.*)?$/.test(l)) continue;
    let joined = '';
    for (;;) {
      const t = l.replace(/\s+$/, '');
      if (t.endsWith(escape)) {
        joined += t.slice(0, -1);
        // Comment and empty lines inside a continuation are skipped.
        while (i < lines.length && /^\s*(#.*)?$/.test(lines[i]!)) i++;
        if (i >= lines.length) break;
        l = lines[i++]!;
        continue;
      }
      joined += t;
      break;
    }
    const m = /^\s*([A-Za-z]+)(?:\s+([\s\S]*))?$/.exec(joined);
    if (!m) throw new DockerfileError(start + 1, `not an instruction: ${joined.slice(0, 80)}`);
    const ins: DockerInstruction = { keyword: m[1]!.toUpperCase(), args: (m[2] ?? '').trim(), line: start + 1 };
    // Heredocs (RUN <<EOF ... EOF): their lines belong to the instruction.
    for (const h of ins.args.matchAll(/<<-?\s*(["']?)([A-Za-z_][A-Za-z0-9_]*)\1/g)) {
      const marker = h[2]!;
      while (i < lines.length && lines[i]!.replace(/^\t+/, '') !== marker) i++;
      if (i >= lines.length) throw new DockerfileError(start + 1, `heredoc ${marker} is never closed`);
      i++;
    }
    out.push(ins);
  }
  const globals = new Map<string, string>();
  const stages: DockerStage[] = [];
  for (const ins of out) {
    if (ins.keyword === 'FROM') {
      const words = ins.args.split(/\s+/).filter((w) => !w.startsWith('--'));
      const from = (words[0] ?? '').replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, n: string) => globals.get(n) ?? '');
      if (!from) throw new DockerfileError(ins.line, 'FROM without an image');
      const stage: DockerStage = { from, line: ins.line, instructions: [] };
      if (words[1]?.toUpperCase() === 'AS' && words[2]) stage.name = words[2];
      stages.push(stage);
      continue;
    }
    const current = stages.at(-1);
    if (!current) {
      if (ins.keyword !== 'ARG') throw new DockerfileError(ins.line, `${ins.keyword} before the first FROM`);
      const [name, value] = ins.args.split('=', 2);
      if (name) globals.set(name.trim(), (value ?? '').trim().replace(/^["']|["']$/g, ''));
      continue;
    }
    current.instructions.push(ins);
  }
  if (stages.length === 0) throw new DockerfileError(1, 'no FROM instruction');
  return { stages };
}

/**
 * The instructions whose history entries the final image carries beyond its root image: the final
 * stage's, after those of the earlier stages it is built FROM. `root` is the image it starts from.
 */
export function finalImageSteps(df: ParsedDockerfile): { root: string; steps: DockerInstruction[] } {
  let stage = df.stages.at(-1)!;
  const steps: DockerInstruction[][] = [];
  const seen = new Set<DockerStage>();
  for (;;) {
    steps.unshift(stage.instructions);
    seen.add(stage);
    const idx = df.stages.indexOf(stage);
    const parent = df.stages.slice(0, idx).reverse().find((s) => s.name !== undefined && s.name.toLowerCase() === stage.from.toLowerCase());
    if (!parent || seen.has(parent)) return { root: stage.from, steps: steps.flat() };
    stage = parent;
  }
}

export interface HistoryEntry {
  CreatedBy?: string;
  Comment?: string;
  Size?: number;
}

const KEYWORDS = new Set([
  'RUN', 'CMD', 'LABEL', 'MAINTAINER', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD',
  'STOPSIGNAL', 'HEALTHCHECK', 'SHELL',
]);

/** The Dockerfile instruction a history entry records, or null when it records none (import, commit). */
export function historyKeyword(h: HistoryEntry): string | null {
  const by = h.CreatedBy ?? '';
  const nop = /^\/bin\/sh -c #\(nop\)\s+([A-Z]+)\b/.exec(by);
  if (nop) return KEYWORDS.has(nop[1]!) ? nop[1]! : null;
  if (h.Comment === 'buildkit.dockerfile.v0') {
    const w = /^([A-Z]+)\b/.exec(by)?.[1];
    return w && KEYWORDS.has(w) ? w : null;
  }
  // The classic builder records RUN as the command itself: `/bin/sh -c …` (shell form), the argv
  // (exec form), "|N ARG=…" in front when build args apply. An import leaves CreatedBy empty.
  return by.trim() === '' ? null : 'RUN';
}
