import { readFileSync } from 'node:fs';
import { PassThrough, type Duplex, type Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type Docker from 'dockerode';
import { TERMINAL_HANGUP_GRACE_MS, type ExecOptions, type ExecResult, type TerminalOptions, type TerminalSession } from './driver.js';

/** Who candidate execs and terminals run as, and who owns the seat's workdir. */
export const CANDIDATE_USER = '1000:1000';
const DEFAULT_OUTPUT_CAP = 1 << 20;

/** A Transform that keeps at most `cap` bytes and remembers whether it dropped any. */
class Capped {
  readonly chunks: Buffer[] = [];
  kept = 0;
  truncated = false;
  constructor(private readonly cap: number) {}
  push(chunk: Buffer): void {
    const room = this.cap - this.kept;
    if (room <= 0) {
      this.truncated = true;
      return;
    }
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
    if (part.length < chunk.length) this.truncated = true;
    this.chunks.push(part);
    this.kept += part.length;
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

/** Run one command in `container` to its end or its deadline, its output capped per stream. */
export async function execIn(
  docker: Docker,
  container: Docker.Container,
  opts: Omit<ExecOptions, 'stdin'> & { stdin?: string | Buffer | Readable },
): Promise<ExecResult> {
  const started = Date.now();
  const tty = opts.tty ?? false;
  const exec = await container.exec({
    Cmd: opts.cmd,
    User: (opts.user ?? 'candidate') === 'candidate' ? CANDIDATE_USER : '0:0',
    Tty: tty,
    AttachStdin: opts.stdin !== undefined,
    AttachStdout: true,
    AttachStderr: true,
    Env: Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`),
    ...(opts.workdir ? { WorkingDir: opts.workdir } : {}),
  });
  const stream = (await exec.start({ hijack: true, stdin: opts.stdin !== undefined, Tty: tty })) as Duplex;
  const cap = opts.outputCapBytes ?? DEFAULT_OUTPUT_CAP;
  const out = new Capped(cap);
  const err = new Capped(cap);
  const sink = (which: 'stdout' | 'stderr', target: Capped): PassThrough => {
    const p = new PassThrough();
    p.on('data', (c: Buffer) => {
      target.push(c);
      opts.onOutput?.(which, c);
    });
    return p;
  };
  const outP = sink('stdout', out);
  const errP = sink('stderr', err);
  if (tty) stream.pipe(outP);
  else docker.modem.demuxStream(stream, outP, errP);

  let timedOut = false;
  const ended = new Promise<void>((resolve) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', () => resolve());
  });
  let timer: NodeJS.Timeout | undefined;
  const deadline = opts.deadlineMs
    ? new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        timedOut = true;
        resolve();
      }, opts.deadlineMs);
    })
    : new Promise<void>(() => undefined);

  if (opts.stdin !== undefined) {
    const src = opts.stdin;
    if (typeof src === 'string' || Buffer.isBuffer(src)) stream.end(src);
    else src.pipe(stream);
  }
  await Promise.race([ended, deadline]);
  if (timer) clearTimeout(timer);
  if (timedOut) {
    await killExec(exec, container.id);
    stream.destroy();
  }
  let exitCode: number | null = null;
  for (let i = 0; i < 50; i++) {
    const info = await exec.inspect();
    if (!info.Running) {
      exitCode = timedOut ? null : info.ExitCode;
      break;
    }
    if (timedOut) break;
    await new Promise((res) => setTimeout(res, 20));
  }
  return {
    exitCode,
    stdout: out.text(),
    stderr: err.text(),
    truncated: out.truncated || err.truncated,
    timedOut,
    durationMs: Date.now() - started,
  };
}

/**
 * Docker has no "kill exec": kill the exec's process from the host, after checking through
 * /proc that the PID still belongs to this container (PIDs are reused). Only possible when the
 * engine is local; otherwise the stream is cut and the process is left to the seat's end.
 */
async function killExec(exec: Docker.Exec, containerId: string): Promise<void> {
  try {
    const info = await exec.inspect();
    const pid = info.Pid;
    if (!info.Running || !pid) return;
    if (!inContainer(pid, containerId)) return;
    // The whole process group the exec leads, then the leader itself.
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      process.kill(pid, 'SIGKILL');
    }
  } catch {
    // best effort: the result already says timedOut
  }
}

/**
 * A login shell (or `opts.cmd`) on a TTY in `container`. `onEnd` is told when its stream ends,
 * before `done` settles.
 */
export async function startTerminal(container: Docker.Container, opts: TerminalOptions, onEnd: (session: TerminalSession) => void): Promise<TerminalSession> {
  const root = opts.user === 'root';
  const exec = await container.exec({
    Cmd: opts.cmd ?? ['/bin/bash', '-l'],
    User: root ? '0' : CANDIDATE_USER,
    Tty: true,
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    Env: root ? ['TERM=xterm-256color', 'HOME=/root', 'USER=root'] : ['TERM=xterm-256color', 'HOME=/home/candidate', 'USER=candidate'],
  });
  const stream = (await exec.start({ hijack: true, stdin: true, Tty: true })) as Duplex;
  await exec.resize({ h: opts.rows ?? 24, w: opts.cols ?? 80 }).catch(() => undefined);
  const done = new Promise<number | null>((resolve) => {
    const finish = (): void => {
      onEnd(session);
      exec.inspect().then((i) => resolve(i.Running ? null : i.ExitCode), () => resolve(null));
    };
    stream.on('close', finish);
    stream.on('end', finish);
  });
  const session: TerminalSession = {
    stream,
    resize: async (cols, rows) => {
      await exec.resize({ h: rows, w: cols });
    },
    done,
    close: () => stream.destroy(),
    hangUp: async () => {
      await hangUpExec(exec, container.id);
      stream.destroy();
    },
  };
  return session;
}

/**
 * Docker leaves an exec running when its stream closes, so a closed browser terminal would
 * leave its shell behind (one per page reload, until the seat's pids limit). Signal the shell
 * from the host like a terminal hang-up, with the same PID check as `killExec`.
 */
async function hangUpExec(exec: Docker.Exec, containerId: string): Promise<void> {
  const ours = async (): Promise<number | undefined> => {
    const info = await exec.inspect().catch(() => undefined);
    const pid = info?.Pid;
    // Not running, or not ours on this host (gone, or the engine is not local): nothing to signal.
    return info?.Running && pid && inContainer(pid, containerId) ? pid : undefined;
  };
  const signal = (pid: number, sig: NodeJS.Signals): void => {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  };
  const pid = await ours();
  if (pid === undefined) return;
  signal(pid, 'SIGHUP');
  const until = Date.now() + TERMINAL_HANGUP_GRACE_MS;
  while (Date.now() < until) {
    await sleep(100);
    if ((await ours()) === undefined) return;
  }
  // A shell that ignores SIGHUP (`trap '' HUP`, which its jobs inherit): kill it and the job in
  // the terminal's foreground, which a real terminal's hang-up would have ended.
  if ((await ours()) !== pid) return;
  const foreground = foregroundGroup(pid);
  if (foreground !== undefined && foreground !== pid && inContainer(foreground, containerId)) signal(-foreground, 'SIGKILL');
  signal(-pid, 'SIGKILL');
  signal(pid, 'SIGKILL');
}

/** The foreground process group of the terminal `pid` controls (`tpgid` in /proc/PID/stat), if any. */
function foregroundGroup(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After "pid (comm) ": state ppid pgrp session tty_nr tpgid …; comm may hold spaces, so cut at the last ')'.
    const tpgid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[5]);
    return Number.isInteger(tpgid) && tpgid > 0 ? tpgid : undefined;
  } catch {
    return undefined;
  }
}

function inContainer(pid: number, containerId: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(containerId);
  } catch {
    return false;
  }
}
