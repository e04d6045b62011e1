import type { Command } from 'commander';
import { loadConfig, detectLang, type Config } from '../core/config.js';
import type { Lang } from '../core/errors.js';

export interface CliContext {
  config: Config;
  lang: Lang;
  json: boolean;
}

/** Global options are read from the root command, so every subcommand sees the same context. */
export function contextOf(cmd: Command): CliContext {
  let root = cmd;
  while (root.parent) root = root.parent;
  const o = root.opts<{ lang?: string; json?: boolean; config?: string; logLevel?: string }>();
  const flags: Record<string, unknown> = {};
  if (o.lang) flags.lang = o.lang;
  if (o.logLevel) flags.logLevel = o.logLevel;
  const config = loadConfig({ file: o.config, flags });
  const lang = detectLang(o.lang, process.env, config.lang);
  return { config, lang, json: Boolean(o.json) };
}
