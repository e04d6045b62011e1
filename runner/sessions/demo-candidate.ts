import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { stripVTControlCharacters } from 'node:util';
import WebSocket from 'ws';
import { DeploylabError, type ErrorCode } from '../core/errors.js';
import type { LoadedTask } from '../tasks/loader.js';

/**
 * A simulated candidate that works the way a person does: it logs in on the candidate page with
 * the seat's one-time access code (the server sets an HttpOnly cookie), opens a task's terminal
 * over the websocket, and types into the seat's TTY shell. Nothing here reaches the engine
 * directly; what a person cannot do through the page, this cannot do either.
 */

const COOKIE = 'dl_session';
/** Kept of the terminal's output (the tail is what a failure shows). */
const KEEP_CHARS = 256 * 1024;
/** Base64 line length: well inside the terminal width, so echoes never wrap. */
const B64_LINE = 76;

/** A bug in what the demo types (or in the path it types through); `details.terminal` has the screen's last lines. */
function demoError(code: ErrorCode, zh: string, en: string, tail?: string): DeploylabError {
  return new DeploylabError({ code, fault: 'bug', message: { zh, en }, ...(tail !== undefined ? { details: { terminal: tail } } : {}) });
}

/** Window-title and other OSC sequences (ESC ] … BEL), which stripVTControlCharacters leaves half. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const OSC = /\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)/g;

/** POST /login like a browser's form; returns the `name=value` of the session cookie. */
export async function loginWithCode(baseUrl: string, code: string): Promise<string> {
  const res = await fetch(`${baseUrl}/login`, { method: 'POST', body: new URLSearchParams({ code }), redirect: 'manual' });
  const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  if (res.status !== 303 || !cookie.startsWith(`${COOKIE}=`) || cookie.length <= COOKIE.length + 1) {
    throw demoError('DEMO_LOGIN_FAILED', `登录码 ${code} 登录失败（HTTP ${res.status}）`, `logging in with code ${code} failed (HTTP ${res.status})`);
  }
  return cookie;
}

/** One task's terminal as the exam page opens it: websocket, same-origin, with the login cookie. */
export class BrowserTerminal {
  private out = '';
  /** Characters trimmed off the front of `out` (marks are absolute positions). */
  private dropped = 0;
  private readonly decoder = new StringDecoder('utf8');
  private closedWith: number | null = null;
  private readonly nonce = randomBytes(4).toString('hex');
  private seq = 0;

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) return; // status frames ({t:'open'}, {t:'closed'}) carry no output
      this.out += this.decoder.write(data);
      if (this.out.length > KEEP_CHARS * 2) {
        this.dropped += this.out.length - KEEP_CHARS;
        this.out = this.out.slice(-KEEP_CHARS);
      }
    });
    ws.on('close', (code: number) => {
      this.closedWith = code;
    });
  }

  static async open(baseUrl: string, cookie: string, seat: string, task: string, size = { cols: 200, rows: 50 }): Promise<BrowserTerminal> {
    const url = `${baseUrl.replace(/^http/, 'ws')}/ws/seats/${seat}/tasks/${task}/terminal?cols=${size.cols}&rows=${size.rows}`;
    const ws = new WebSocket(url, { headers: { cookie, origin: baseUrl } });
    const term = new BrowserTerminal(ws);
    await new Promise<void>((resolve, reject) => {
      const fail = (why: string): void => reject(demoError('DEMO_TERMINAL_REFUSED', `${seat}/${task} 终端打不开：${why}`, `${seat}/${task} terminal refused: ${why}`));
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        if (isBinary) return;
        const m = JSON.parse(data.toString()) as { t: string; reason?: string };
        if (m.t === 'open') resolve();
        else if (m.t === 'closed') fail(m.reason ?? 'closed');
      });
      ws.on('unexpected-response', (_req, res) => fail(`HTTP ${res.statusCode}`));
      ws.on('error', (e) => fail(e.message));
      ws.on('close', (code) => fail(`closed ${code}`));
    });
    return term;
  }

  /** Keystrokes, as the page sends them. */
  type(s: string): void {
    this.ws.send(JSON.stringify({ t: 'in', d: s }));
  }

  /** The last lines of what the terminal showed (since `from`), without colours and cursor moves. */
  tail(lines = 30, from = 0): string {
    const text = this.out.slice(Math.max(0, from - this.dropped));
    return stripVTControlCharacters(text.replace(OSC, '')).replace(/\r/g, '').split('\n').slice(-lines).join('\n');
  }

  /** Wait until the output after `from` matches; null on timeout or when the terminal closed. */
  async waitFor(re: RegExp, ms: number, from = 0): Promise<RegExpExecArray | null> {
    const until = Date.now() + ms;
    for (;;) {
      const m = re.exec(this.out.slice(Math.max(0, from - this.dropped)));
      if (m) return m;
      if (this.closedWith !== null || Date.now() >= until) return null;
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Where new output starts (for waitFor). */
  mark(): number {
    return this.dropped + this.out.length;
  }

  /**
   * Type a command line and wait for it to finish: the shell prints a marker with `$?` after it.
   * The echo of the typed line shows the marker with a literal `$?`, so only the real one matches.
   */
  async run(command: string, timeoutMs: number): Promise<{ exitCode: number | null }> {
    const tag = `__done_${this.nonce}_${++this.seq}`;
    const from = this.mark();
    this.type(`${command}; echo "${tag}:$?"\r`);
    const m = await this.waitFor(new RegExp(`${tag}:(\\d+)`), timeoutMs, from);
    if (!m) {
      this.type('\x03'); // Ctrl-C, as a person would
      return { exitCode: null };
    }
    return { exitCode: Number(m[1]) };
  }

  /**
   * Put a file in the seat by typing it: base64 lines into a quoted heredoc (no `$`, backtick,
   * `!`, tab or control character ever reaches readline), decoded by the shell, then checked
   * against its SHA-256 so a garbled keystroke cannot go unnoticed. Each line waits for its echo,
   * as a person watches what they type, so nothing piles up in the TTY's input queue.
   */
  async typeFile(path: string, content: Buffer | string, timeoutMs = 60_000): Promise<void> {
    const buf = Buffer.isBuffer(content) ? content : Buffer.from(content, 'utf8');
    const sha = createHash('sha256').update(buf).digest('hex');
    const until = Date.now() + timeoutMs;
    const dir = path.slice(0, path.lastIndexOf('/')) || '/';
    const mk = await this.run(`mkdir -p '${dir}'`, timeoutMs);
    if (mk.exitCode !== 0) throw demoError('DEMO_TYPING_FAILED', `无法创建 ${dir}`, `cannot create ${dir}`, this.tail());
    const eof = `EOF_${this.nonce}`;
    this.type(`base64 -d > '${path}' <<'${eof}'\r`);
    const b64 = buf.toString('base64');
    for (let i = 0; i < b64.length; i += B64_LINE) {
      const line = b64.slice(i, i + B64_LINE);
      const from = this.mark();
      this.type(`${line}\r`);
      if (!(await this.waitFor(new RegExp(line.replace(/[+/]/g, '\\$&')), Math.max(1, until - Date.now()), from))) {
        throw demoError('DEMO_TYPING_FAILED', `输入 ${path} 时终端没有回显`, `the terminal did not echo while typing ${path}`, this.tail());
      }
    }
    this.type(`${eof}\r`);
    const check = await this.run(`test "$(sha256sum < '${path}' | cut -c1-64)" = ${sha}`, Math.max(1, until - Date.now()));
    if (check.exitCode !== 0) {
      throw demoError('DEMO_TYPING_FAILED', `输入的 ${path} 与原文不符（退出码 ${check.exitCode}）`, `${path} as typed differs from the original (exit ${check.exitCode})`, this.tail());
    }
  }

  close(): void {
    this.ws.close();
  }
}

/** The seat's login shell PATH has the sbin folders (nginx lives in /usr/sbin). */
const HAS_SBIN = 'case ":$PATH:" in *:/usr/sbin:*) true ;; *) false ;; esac';

export interface TypedSolution {
  script: string;
  exitCode: number | null;
  durationMs: number;
}

/** Where a typed solution script is put in the seat (outside the workspace the evidence takes). */
export const TYPED_SOLUTION_DIR = '/tmp/solve';

/**
 * Solve one task as a person at the exam page: open the task's terminal, type each reference
 * solution script into the seat, run it from /workspace and wait for its exit code — all within
 * the task's solution time. A script that fails (or runs out of time) is a DEMO_SOLUTION_FAILED
 * bug showing the terminal's last lines.
 */
export async function solveThroughTerminal(opts: { baseUrl: string; cookie: string; seat: string; loaded: LoadedTask }): Promise<{ runs: TypedSolution[]; addedSbinToPath: boolean }> {
  const { task, dir } = opts.loaded;
  const until = Date.now() + task.solution.timeoutSeconds * 1000;
  const left = (): number => Math.max(1000, until - Date.now());
  const term = await BrowserTerminal.open(opts.baseUrl, opts.cookie, opts.seat, task.id);
  const runs: TypedSolution[] = [];
  let addedSbinToPath = false;
  try {
    // A person who meets "nginx: command not found" adds the sbin folders; so does the demo, and
    // says so, rather than hiding a login PATH that lacks them.
    const sbin = await term.run(HAS_SBIN, left());
    if (sbin.exitCode !== 0) {
      addedSbinToPath = true;
      await term.run('export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"', left());
    }
    for (const name of task.solution.scripts) {
      const started = Date.now();
      const path = `${TYPED_SOLUTION_DIR}/${name}`;
      await term.typeFile(path, readFileSync(join(dir, 'solution', name)), left());
      const from = term.mark();
      const r = await term.run(`cd /workspace && bash '${path}'`, left());
      runs.push({ script: name, exitCode: r.exitCode, durationMs: Date.now() - started });
      if (r.exitCode !== 0) {
        const why = r.exitCode === null ? { zh: '超时', en: 'timed out' } : { zh: `退出码 ${r.exitCode}`, en: `exit ${r.exitCode}` };
        throw demoError(
          'DEMO_SOLUTION_FAILED',
          `参考答案经浏览器终端运行失败：${opts.seat} ${task.id} ${name}（${why.zh}）`,
          `reference solution failed through the browser terminal: ${opts.seat} ${task.id} ${name} (${why.en})`,
          term.tail(30, from),
        );
      }
    }
  } finally {
    term.close();
  }
  return { runs, addedSbinToPath };
}
