import type { Command } from 'commander';
import { DeploylabError } from '../core/errors.js';
import { printJson, printText, say, table } from '../core/output.js';
import { sandboxDriverFor } from '../sandbox/backend.js';
import type { SweepFilter } from '../sandbox/driver.js';
import { parseDuration } from '../sandbox/labels.js';
import { contextOf } from './context.js';

function filterFrom(o: { session?: string; olderThan?: string }): SweepFilter {
  const f: SweepFilter = {};
  if (o.session) f.session = o.session;
  if (o.olderThan !== undefined) {
    const ms = parseDuration(o.olderThan);
    if (ms === null) {
      throw new DeploylabError({
        code: 'CLI_BAD_DURATION',
        fault: 'config',
        message: { zh: `无法识别的时长：${o.olderThan}`, en: `unrecognised duration: ${o.olderThan}` },
        hint: { zh: '例如 90s、15m、2h、7d', en: 'e.g. 90s, 15m, 2h, 7d' },
      });
    }
    f.olderThanMs = ms;
  }
  return f;
}

/** `deploylab sandbox ls|sweep` — seats found by their labels on the engine. */
export function registerSandboxCommands(program: Command): void {
  const sandbox = program.command('sandbox').description('考位沙箱 (candidate sandboxes)');

  sandbox
    .command('ls')
    .description('列出带 deploylab 标签的考位 (list seats carrying our labels)')
    .option('--session <id>', '只看某个场次 (one session only)')
    .option('--older-than <duration>', '只看创建早于该时长的 (created longer ago than, e.g. 2h)')
    .action(async (o: { session?: string; olderThan?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const driver = sandboxDriverFor(ctx.config);
      const seats = await driver.list(filterFrom(o));
      if (ctx.json) {
        printJson({ ok: true, seats });
        return;
      }
      if (seats.length === 0) {
        printText(say(ctx.lang, '没有考位', 'no seats'));
        return;
      }
      printText(
        table(
          [say(ctx.lang, '场次', 'session'), say(ctx.lang, '考位', 'seat'), say(ctx.lang, '试题', 'task'), say(ctx.lang, '状态', 'state'), say(ctx.lang, '创建时间', 'created'), say(ctx.lang, '容器', 'containers')],
          seats.map((s) => [s.ref.session, s.ref.seat, s.task, s.state, s.createdAt, s.containers.map((c) => `${c.role}${c.running ? '' : '(stopped)'}`).join(',')]),
        ),
      );
    });

  sandbox
    .command('sweep')
    .description('删除带 deploylab 标签的容器、网络、卷 (remove containers, networks, volumes carrying our labels)')
    .option('--session <id>', '只清理某个场次 (one session only)')
    .option('--older-than <duration>', '只清理创建早于该时长的 (created longer ago than, e.g. 2h)')
    .action(async (o: { session?: string; olderThan?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const driver = sandboxDriverFor(ctx.config);
      const removed = await driver.sweep(filterFrom(o));
      if (ctx.json) {
        printJson({ ok: true, removed });
        return;
      }
      printText(say(ctx.lang, `已删除 ${removed.length} 项`, `removed ${removed.length} item(s)`));
      if (removed.length > 0) {
        printText(table(['kind', 'name', 'session', 'seat'], removed.map((r) => [r.kind, r.name, r.session, r.seat])));
      }
    });
}
