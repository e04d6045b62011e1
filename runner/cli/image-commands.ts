import type { Command } from 'commander';
import { z } from 'zod';
import { buildImages, inspectImages } from '../images/image-build.js';
import { IMAGE_NAMES, type ImageBuildProgress, type ImageName } from '../images/types.js';
import { parseOrThrow } from '../core/validation.js';
import { isDeploylabError } from '../core/errors.js';
import { EXIT, printJson, printText, say, table } from '../core/output.js';
import { contextOf } from './context.js';

const NamesSchema = z.array(z.enum(IMAGE_NAMES));

function mib(bytes: number | undefined): string {
  return bytes === undefined ? '-' : `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
}

/** `deploylab images build|ls`. */
export function registerImageCommands(program: Command): void {
  const images = program.command('images').description('沙箱镜像 (sandbox images)');

  images
    .command('build')
    .description('构建沙箱镜像；输入未变时直接复用 (build sandbox images; unchanged inputs are reused)')
    .argument('[names...]', `只构建这些及其依赖 (only these and what they need): ${IMAGE_NAMES.join(', ')}`)
    .option('--offline', '不用镜像仓库：从 Debian 镜像站自举基础镜像 (no registry: bootstrap the base from the Debian mirror)')
    .option('--verbose', '在标准错误输出完整构建日志 (full build output on stderr)')
    .action(async (rawNames: string[], o: { offline?: boolean; verbose?: boolean }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const names: ImageName[] = parseOrThrow(NamesSchema, rawNames, {
        source: 'command line',
        code: 'IMAGE_UNKNOWN',
        what: { zh: '镜像名', en: 'image names' },
      });
      const offline = Boolean(o.offline) || ctx.config.images.offline;
      let lastPhase = '';
      const onProgress = (p: ImageBuildProgress): void => {
        const key = `${p.name}/${p.phase}`;
        const interesting = o.verbose || key !== lastPhase || (p.line !== undefined && /^Step \d+\/\d+/.test(p.line));
        lastPhase = key;
        if (!interesting) return;
        process.stderr.write(`[${p.name}] ${p.phase}${p.line ? `: ${p.line.trimEnd()}` : ''}\n`);
      };
      let results: Awaited<ReturnType<typeof buildImages>>;
      try {
        results = await buildImages({ config: ctx.config, offline, names, onProgress });
      } catch (e) {
        // Show the failing step's last lines (unless they were just streamed in full).
        const lines = isDeploylabError(e) ? e.details?.lastLines : undefined;
        if (!o.verbose && !ctx.json && Array.isArray(lines)) process.stderr.write(`${lines.join('\n')}\n`);
        throw e;
      }
      if (ctx.json) {
        printJson({ ok: true, offline, images: results });
        return;
      }
      const outcome = (r: (typeof results)[number]): string =>
        ({ built: say(ctx.lang, '已构建', 'built'), cached: say(ctx.lang, '已是最新', 'cached'), skipped: say(ctx.lang, '已跳过', 'skipped') })[
          r.outcome
        ];
      printText(
        table(
          [say(ctx.lang, '镜像', 'image'), say(ctx.lang, '结果', 'outcome'), say(ctx.lang, '秒', 's'), say(ctx.lang, '大小', 'size'), 'ref'],
          results.map((r) => [r.name, outcome(r), r.seconds.toFixed(1), mib(r.sizeBytes), r.ref]),
        ),
      );
      for (const r of results.filter((x) => x.reason)) printText(`${r.name}: ${say(ctx.lang, r.reason!.zh, r.reason!.en)}`);
    });

  images
    .command('ls')
    .description('列出沙箱镜像是否存在、是否为最新 (which sandbox images are present and current)')
    .option('--offline', '按离线自举的基础镜像计算 (as built with --offline)')
    .action(async (o: { offline?: boolean }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const offline = Boolean(o.offline) || ctx.config.images.offline;
      const states = await inspectImages({ ...ctx.config, images: { ...ctx.config.images, offline } });
      if (ctx.json) printJson({ ok: true, offline, images: states });
      else {
        const yes = say(ctx.lang, '是', 'yes');
        const no = say(ctx.lang, '否', 'no');
        printText(
          table(
            [say(ctx.lang, '镜像', 'image'), say(ctx.lang, '最新', 'current'), say(ctx.lang, '存在', 'present'), say(ctx.lang, '大小', 'size'), 'ref'],
            states.map((s) => [s.name, s.current ? yes : no, s.present ? yes : no, mib(s.sizeBytes), s.ref]),
          ),
        );
      }
      // Missing or outdated images are a "not ready" answer, not a failure to run.
      const wanted = states.filter((s) => s.name !== 'workspace-gpu');
      if (wanted.some((s) => !s.current)) process.exitCode = EXIT.notReady;
    });
}
