/**
 * `process` probe: the seat's processes as the host's process table shows them (nothing runs in
 * the seat): is the expected program running, how many, as whom, with which options, and does
 * its port accept connections.
 */
import { connect } from 'node:net';
import type { z } from 'zod';
import { ProcessParamsSchema, type ProcessMatchSchema } from '../runner/tasks/probe-params.js';
import { judge, show, type Assertion } from './assertions.js';
import { defineProbe, judgeUnreachable, note, type Deadline, type SeatHandle, type SeatProcess } from './probe.js';

export type ProcessParams = z.output<typeof ProcessParamsSchema>;
type ProcessMatch = z.output<typeof ProcessMatchSchema>;

/** argv from a host `ps` args column: whitespace-separated (quoting is not recoverable there). */
export function argvOf(command: string): string[] {
  return command.trim().split(/\s+/).filter(Boolean);
}

/** Executable basename of argv[0] (`sh -c 'exec llama-server …'` shows as llama-server once exec'd). */
export function exeOf(argv: readonly string[]): string {
  const base = (s: string): string => s.slice(s.lastIndexOf('/') + 1);
  return base(argv[0] ?? '');
}

export function matches(p: SeatProcess, m: ProcessMatch): boolean {
  const argv = argvOf(p.command);
  if (m.exe !== undefined && exeOf(argv) !== m.exe) return false;
  if (m.commandMatches !== undefined && !new RegExp(m.commandMatches).test(p.command)) return false;
  return true;
}

/**
 * The value of an option under any of its spellings: `-t 2`, `--threads 2`, `--threads=2`.
 * Later occurrences win, as with most argument parsers. Undefined when absent.
 */
export function optionValue(argv: readonly string[], flags: readonly string[]): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    for (const f of flags) {
      if (a === f) found = argv[i + 1] ?? '';
      else if (f.startsWith('--') && a.startsWith(`${f}=`)) found = a.slice(f.length + 1);
    }
  }
  return found;
}

/** Whether the seat's port accepts a TCP connection from the harness. */
async function accepts(seat: SeatHandle, container: string, port: number, deadline: Deadline): Promise<{ ok: boolean; code: string }> {
  const ep = await seat.endpoint(port, { container });
  return new Promise((resolve) => {
    const s = connect({ host: ep.host, port: ep.port, signal: deadline.stepSignal(5000) });
    s.once('connect', () => {
      s.destroy();
      resolve({ ok: true, code: 'connected' });
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, code: e.code ?? e.name }));
  });
}

export const processProbe = defineProbe({
  kind: 'process',
  params: ProcessParamsSchema,
  async run(seat, p, deadline) {
    const all = await seat.listProcesses();
    const found = all.filter((x) => x.role === p.container && matches(x, p.match));
    const e = p.expect;
    const evidence = [
      note('匹配的进程', 'matching processes', {
        match: p.match,
        container: p.container,
        processes: found.slice(0, 20).map((x) => ({ hostPid: x.hostPid, user: x.user, command: show(x.command, 500) })),
        seen: all.length,
      }),
    ];
    const a: Assertion[] = [];
    if (!e.running) {
      a.push({ id: 'running', ok: found.length === 0, expected: 'not running', actual: `${found.length} running` });
      return judge(a, 'all', { zh: '进程检查', en: 'process check' }, evidence);
    }
    const min = e.count?.min ?? 1;
    const max = e.count?.max;
    a.push({
      id: 'count',
      ok: found.length >= Math.max(1, min) && (max === undefined || found.length <= max),
      expected: max === undefined ? `≥ ${Math.max(1, min)}` : `${Math.max(1, min)}..${max}`,
      actual: String(found.length),
    });
    if (e.user !== undefined) {
      const users = [...new Set(found.map((x) => x.user))];
      a.push({ id: 'user', ok: found.length > 0 && users.every((u) => u === e.user), expected: e.user, actual: users.join(', ') || '(none)' });
    }
    for (const opt of e.args ?? []) {
      // Every matching process must carry the option: a second, misconfigured copy is wrong too.
      const values = found.map((x) => optionValue(argvOf(x.command), opt.flags));
      const ok = found.length > 0 && values.every((v) => v === opt.equals);
      a.push({ id: `arg:${opt.flags.join('|')}`, ok, expected: opt.equals, actual: values.map((v) => v ?? '(absent)').join(', ') || '(no process)' });
    }
    if (e.listens !== undefined) {
      // The port answers; which process owns the socket is not visible from outside the seat.
      const r = await accepts(seat, p.container, e.listens, deadline);
      deadline.check();
      if (!r.ok) {
        // Nothing answering is the candidate's unless the harness's own path is down.
        const o = await judgeUnreachable(seat, { zh: `端口 ${e.listens} 不可达`, en: `port ${e.listens} unreachable` }, evidence);
        if (o.status === 'error') return o;
      }
      a.push({ id: 'listens', ok: r.ok, expected: `port ${e.listens} accepts connections`, actual: r.code });
    }
    return judge(a, 'all', { zh: '进程检查', en: 'process check' }, evidence);
  },
});
