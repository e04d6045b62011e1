import { execFileSync, spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, openSync, readSync, closeSync, renameSync, rmSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { tmpdir } from 'node:os';
import { pathToFileURL } from 'node:url';
import type { Bilingual } from '../core/errors.js';

/**
 * The score sheet's PDF, printed from its HTML by the host's headless Chromium (the Debian
 * `chromium` package that `host prepare --test-tools` installs and the browser tests drive). No
 * Chromium is not an error of the report: the HTML is there to print from a browser, and the
 * caller gets a warning saying so.
 */

export interface PdfWarning {
  code: 'REPORT_PDF_NO_CHROMIUM' | 'REPORT_PDF_FAILED' | 'REPORT_PDF_NO_CJK_FONT';
  message: Bilingual;
  hint?: Bilingual;
}

export type PdfResult = { pdf: string; warnings: PdfWarning[] } | { pdf: null; warnings: PdfWarning[] };

/** Debian's path first (what the browser tests use), then the usual names on PATH. */
const KNOWN = ['/usr/bin/chromium'];
const NAMES = ['chromium', 'chromium-browser', 'google-chrome-stable', 'google-chrome'];

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

export function findChromium(pathEnv: string = process.env.PATH ?? ''): string | null {
  for (const p of KNOWN) if (executable(p)) return p;
  for (const dir of pathEnv.split(delimiter).filter(Boolean)) {
    for (const n of NAMES) if (executable(join(dir, n))) return join(dir, n);
  }
  return null;
}

/** Whether fontconfig knows a font with Chinese glyphs; null where fc-list is not there to ask. */
function hasCjkFont(): boolean | null {
  try {
    return execFileSync('fc-list', [':lang=zh', 'family'], { encoding: 'utf8', timeout: 10_000 }).trim().length > 0;
  } catch {
    return null;
  }
}

function startsWithPdf(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(5);
    return readSync(fd, b, 0, 5, 0) === 5 && b.toString('latin1') === '%PDF-';
  } finally {
    closeSync(fd);
  }
}

/** Chromium logs much that is not about this page (no D-Bus in a container, GPU probing). */
const tail = (s: string): string =>
  s
    .split('\n')
    .filter((l) => l.trim() && !/dbus|Fontconfig|unexpected operator/i.test(l))
    .slice(-6)
    .join('\n');

/**
 * Print `html` (a file) to `pdf`. The PDF appears only when complete (written beside, then
 * renamed). Chromium gets a fresh profile, no network-facing services, and `timeoutMs` to finish;
 * its whole process group is killed after that.
 */
export async function htmlToPdf(html: string, pdf: string, opts: { chromium?: string | null; timeoutMs?: number } = {}): Promise<PdfResult> {
  const chromium = opts.chromium === undefined ? findChromium() : opts.chromium;
  if (!chromium || !existsSync(chromium)) {
    return {
      pdf: null,
      warnings: [
        {
          code: 'REPORT_PDF_NO_CHROMIUM',
          message: { zh: `未找到 Chromium，跳过 PDF；可用浏览器打印 ${html}`, en: `no Chromium found: PDF skipped; print ${html} from a browser instead` },
          hint: { zh: '安装 Debian 软件包 chromium 与 fonts-noto-cjk 后重新运行 session report', en: 'install the Debian packages chromium and fonts-noto-cjk, then run session report again' },
        },
      ],
    };
  }
  const warnings: PdfWarning[] = [];
  if (hasCjkFont() === false) {
    warnings.push({
      code: 'REPORT_PDF_NO_CJK_FONT',
      message: { zh: '本机没有中文字体，PDF 中的中文可能无法显示', en: 'no Chinese font on this host: Chinese text in the PDF may not show' },
      hint: { zh: '安装 fonts-noto-cjk', en: 'install fonts-noto-cjk' },
    });
  }
  const profile = mkdtempSync(join(tmpdir(), 'deploylab-pdf-'));
  const partial = `${pdf}.partial`;
  rmSync(partial, { force: true });
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-extensions',
    `--user-data-dir=${profile}`,
    '--no-pdf-header-footer',
    `--print-to-pdf=${partial}`,
    pathToFileURL(html).href,
  ];
  const timeoutMs = opts.timeoutMs ?? 60_000;
  try {
    const run = await new Promise<{ code: number | null; stderr: string; timedOut: boolean; error?: string }>((resolve) => {
      const child = spawn(chromium, args, { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      let timedOut = false;
      child.stderr!.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-16_384);
      });
      const timer = setTimeout(() => {
        timedOut = true;
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      }, timeoutMs);
      child.on('error', (e) => {
        clearTimeout(timer);
        resolve({ code: null, stderr, timedOut, error: e.message });
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stderr, timedOut });
      });
    });
    const ok = run.code === 0 && existsSync(partial) && statSync(partial).size > 0 && startsWithPdf(partial);
    if (!ok) {
      const why = run.error ?? (run.timedOut ? `timed out after ${timeoutMs / 1000} s` : `exit ${run.code}${existsSync(partial) ? '' : ', no file written'}`);
      warnings.push({
        code: 'REPORT_PDF_FAILED',
        message: { zh: `Chromium 未能生成 PDF（${why}）；可用浏览器打印 ${html}`, en: `Chromium could not print the PDF (${why}); print ${html} from a browser instead` },
        hint: { zh: `Chromium 输出：${tail(run.stderr) || '无'}`, en: `Chromium said: ${tail(run.stderr) || 'nothing'}` },
      });
      rmSync(partial, { force: true });
      return { pdf: null, warnings };
    }
    renameSync(partial, pdf);
    return { pdf, warnings };
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}
