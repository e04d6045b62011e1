import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { asDeploylabError } from '../core/errors.js';
import { detectLang } from '../core/config.js';
import { EXIT, printJson } from '../core/output.js';
import { log } from '../core/logger.js';
import { registerHostCommands } from './host-commands.js';
import { registerImageCommands } from './image-commands.js';
import { registerSandboxCommands } from './sandbox-commands.js';
import { registerTaskCommands } from './task-commands.js';
import { registerServeCommands } from './serve-commands.js';
import { registerSessionCommands } from './session-commands.js';
import { registerDemoCommands } from './demo-commands.js';
import { registerSeatCommands } from './seat-commands.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(): Command {
  const program = new Command('deploylab')
    .description('大模型部署工程师实操考核平台 (LLM Deployment Engineer practical-exam harness)')
    .version(pkg.version)
    .option('--lang <lang>', '界面语言 zh|en (language for people)')
    .option('--json', '在标准输出打印机器可读的 JSON (machine-readable JSON on stdout)')
    .option('-c, --config <file>', '配置文件 (config file, YAML)')
    .option('--log-level <level>', '日志级别 (log level; logs go to stderr)')
    .exitOverride()
    .showHelpAfterError();
  registerHostCommands(program);
  registerImageCommands(program);
  registerSandboxCommands(program);
  registerTaskCommands(program);
  registerServeCommands(program);
  registerSessionCommands(program);
  registerDemoCommands(program);
  registerSeatCommands(program);
  return program;
}

/** Runs the CLI and returns the exit code; never throws. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.exitCode === 0 ? EXIT.ok : EXIT.badInput;
    }
    const err = asDeploylabError(e);
    const json = argv.includes('--json');
    const langIdx = argv.indexOf('--lang');
    const lang = detectLang(langIdx >= 0 ? argv[langIdx + 1] : undefined);
    if (err.fault === 'bug') log.error({ err: e }, 'unexpected error');
    if (json) printJson({ ok: false, error: err.toJSON() });
    else process.stderr.write(`${lang === 'zh' ? '错误' : 'error'} [${err.code}]: ${err.text(lang)}\n`);
    if (err.fault === 'config') return EXIT.badInput;
    if (err.fault === 'infrastructure') return EXIT.couldNotRun;
    if (err.fault === 'bug') return EXIT.bug;
    return EXIT.notReady;
  }
}
