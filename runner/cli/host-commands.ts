import type { Command } from 'commander';
import { printJson, printText } from '../core/output.js';
import { checkHost, renderReport, type CheckedHost } from '../host/check.js';
import { imageOps } from '../host/images.js';
import { effectiveConfig, prepareHost } from '../host/prepare.js';
import { contextOf, type CliContext } from './context.js';

function emit(ctx: CliContext, report: CheckedHost): void {
  if (ctx.json) printJson(report);
  else printText(renderReport(report, ctx.lang));
  process.exitCode = report.exitCode;
}

/** `deploylab host check|prepare`: exit 0 ready, 1 not ready, 2 could not check, 3 bad input. */
export function registerHostCommands(program: Command): void {
  const host = program.command('host').description('考点主机：检查与准备 (exam host: check and prepare)');

  host
    .command('check')
    .description('检查主机是否可以开考：沙箱后端、引擎、cgroup、磁盘、GPU、镜像 (is this host ready: sandbox backend, engine, cgroups, disk, GPUs, images)')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      emit(ctx, await checkHost(ctx.config));
    });

  host
    .command('prepare')
    .description('准备主机：按需安装并启动 Docker 引擎、构建缺少的镜像，最后检查 (install/start the engine if needed, build missing images, then check)')
    .option('--offline', '不用镜像仓库：从 Debian 镜像站自举基础镜像 (no registry: bootstrap the base from the Debian mirror)')
    .option('--no-images', '只准备引擎，不构建镜像 (engine only, build no images)')
    .option('--test-tools', '另装本项目测试所用的主机软件包 (also install the host packages the test suite uses: nginx, prometheus, chromium, CJK fonts)')
    .action(async (opts: { offline?: boolean; images: boolean; testTools?: boolean }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const offline = Boolean(opts.offline) || ctx.config.images.offline;
      const ops = await imageOps();
      const progress = (m: { zh: string; en: string }): void => {
        process.stderr.write(`[host prepare] ${ctx.lang === 'zh' ? `${m.zh} (${m.en})` : m.en}\n`);
      };
      await prepareHost(ctx.config, { offline, images: opts.images, testTools: Boolean(opts.testTools) }, { ...ops, progress });
      // Judge with the same image recipe (offline or not) that prepare just built.
      emit(ctx, await checkHost(effectiveConfig(ctx.config, { offline }), { inspectImages: ops.inspectImages }));
    });
}
