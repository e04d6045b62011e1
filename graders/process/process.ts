/**
 * `process` probe: the seat's processes as the host's process table shows them (nothing runs in
 * the seat): is the expected program running, how many, as whom, with which options, is it the
 * program it claims to be, and does it own its port.
 *
 * `match` selects by name and command line, which any candidate can forge (`exec -a`); identity
 * is `executable` (the kernel's /proc/<pid>/exe has the content of the image's file) and `opens`
 * (the model file is mapped or open), judged from the host (process-identity.ts). A service's
 * other checks depend on the check that proves its identity.
 *
 * `threads` (threads.ts) reads each thread's CPU affinity and CPU time from the host's /proc: a
 * server pinned to one core, or computing on fewer threads than it claims, shows there.
 *
 * `listens` is judged host-side from /proc: the TCP tables of the matched process's network
 * namespace give the sockets listening on the port, the fd tables of the seat's processes say who
 * holds them (rule: proc-net.ts judgeOwnership). Another program answering on the port while the
 * matched one idles is a fail. Where the host's /proc does not show the seat's processes (Kubernetes
 * pod PIDs, an engine on another machine, a harness without root) that part cannot be judged: an
 * `error`, unless another expectation already failed. The port must also accept the harness's
 * connection (`accepts`).
 */
import type { ErrorCode } from '../../runner/core/error-codes.js';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { connect } from 'node:net';
import type { z } from 'zod';
import { DeploylabError, isDeploylabError } from '../../runner/core/errors.js';
import { judge, show, type Assertion } from '../shared/assertions.js';
import { capability } from '../capabilities.js';
import { ProcessParamsSchema } from './params.js';
import { executableOf, holdsFile, PROC } from '../shared/process-identity.js';
import { argvOf, matches } from '../shared/process-match.js';
import { judgeThreads, readThreads } from './threads.js';
import {
  cmdlineText,
  judgeOwnership,
  listeningOn,
  parseProcNetTcp,
  ProcNetParseError,
  processTree,
  sameCommand,
  socketInode,
  type Ownership,
  type TcpSocket,
} from '../parsers/proc-net.js';
import { defineProbe, errored, note, judgeUnreachable, type Deadline, type Evidence, type SeatHandle, type SeatProcess } from '../probe.js';

export type ProcessParams = z.output<typeof ProcessParamsSchema>;

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

/** fd links read per process at most: a server holds its listening sockets among its first fds. */
const MAX_FDS_PER_PROCESS = 65_536;

function cannotSee(code: ErrorCode, zh: string, en: string, details: Record<string, unknown>, cause?: unknown): DeploylabError {
  return new DeploylabError({
    code,
    fault: 'infrastructure',
    message: { zh: `无法判断端口归属：${zh}`, en: `cannot tell who holds the port: ${en}` },
    hint: {
      zh: '在容器引擎所在主机上以 root 运行评分程序（Docker 驱动）；Kubernetes 驱动无法做此项检查',
      en: "run the grader as root on the engine's host (Docker driver); the Kubernetes driver cannot make this check",
    },
    details,
    ...(cause !== undefined ? { cause } : {}),
  });
}

/** A failed /proc read returns when the process (or fd) is gone; no permission, or anything else, throws. */
function procError(e: unknown, pid: number, what: string): void {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ESRCH') return;
  if (code === 'EACCES' || code === 'EPERM') {
    throw cannotSee('PROBE_HOST_PROC_DENIED', `无权读取主机上进程 ${pid} 的 ${what}`, `no permission to read ${what} of host process ${pid}`, { pid, what, errno: code }, e);
  }
  throw cannotSee('PROBE_HOST_PROC_FAILED', `读取主机上进程 ${pid} 的 ${what} 失败`, `reading ${what} of host process ${pid} failed`, { pid, what, errno: code }, e);
}

/**
 * The seat's processes this machine's /proc shows as listed. Only PIDs whose live command line is
 * the listed one count: on another machine, or after reuse, the same number names some other
 * process. Throws (fault infrastructure) when none shows, or the PIDs are a pod's own.
 */
async function visibleOnHost(all: readonly SeatProcess[], found: readonly SeatProcess[], deadline: Deadline): Promise<Map<number, SeatProcess>> {
  const pod = found.find((p) => p.pidNamespace === 'pod');
  if (pod) {
    throw cannotSee('PROBE_HOST_PIDS_UNAVAILABLE', '考位的进程号是 Pod 内的进程号，主机的 /proc 不可见', "the seat's PIDs are a pod's own, not the host's: its /proc is out of reach", { hostPid: pod.hostPid, pidNamespace: 'pod' });
  }
  const visible = new Map<number, SeatProcess>();
  for (const p of all) {
    let raw: string;
    try {
      raw = await readFile(`${PROC}/${p.hostPid}/cmdline`, 'utf8');
    } catch (e) {
      procError(e, p.hostPid, 'cmdline');
      continue;
    }
    if (sameCommand(p.command, cmdlineText(raw))) visible.set(p.hostPid, p);
  }
  deadline.check();
  if (visible.size === 0) {
    throw cannotSee(
      'PROBE_HOST_PIDS_UNAVAILABLE',
      '本机 /proc 中看不到考位的任何进程（容器引擎不在本机，或评分程序不在主机的进程命名空间中）',
      "none of the seat's processes shows in this machine's /proc (engine on another machine, or the grader outside the host's PID namespace)",
      { listed: all.slice(0, 20).map((p) => p.hostPid) },
    );
  }
  return visible;
}

const short = (sha: string): string => sha.slice(0, 12);

/**
 * `executable` and `opens`: which program each matched process really is. Processes that exited
 * since the listing fail the assertion (the server went away); throws when the host's /proc is
 * out of reach or unreadable, or the engine cannot show the image's file.
 */
async function identityAssertions(seat: SeatHandle, p: ProcessParams, found: readonly SeatProcess[], all: readonly SeatProcess[], deadline: Deadline): Promise<{ assertions: Assertion[]; evidence: Evidence[] }> {
  const e = p.expect;
  const assertions: Assertion[] = [];
  const evidence: Evidence[] = [];
  if (found.length === 0) {
    if (e.executable !== undefined) assertions.push({ id: 'executable', ok: false, expected: `the image's ${e.executable}`, actual: '(no process)' });
    for (const path of e.opens ?? []) assertions.push({ id: `opens:${path}`, ok: false, expected: `${path} mapped or open`, actual: '(no process)' });
    return { assertions, evidence };
  }
  const visible = await visibleOnHost(all, found, deadline);
  const live = found.filter((x) => visible.has(x.hostPid));
  const gone = found.length - live.length;
  if (e.executable !== undefined) {
    const want = await capability(seat, 'image-files')(e.executable, { container: p.container });
    if (!want) {
      throw new DeploylabError({
        code: 'PROBE_IMAGE_FILE_MISSING',
        fault: 'config',
        message: { zh: `考位镜像中没有 ${e.executable}：考题的 executable 写错了`, en: `the seat's image has no ${e.executable}: the task's executable is wrong` },
        details: { executable: e.executable, container: p.container },
      });
    }
    const seen: { hostPid: number; exe: string; size: number; sha256: string; same: boolean }[] = [];
    for (const x of live) {
      let id;
      try {
        id = await executableOf(x.hostPid);
      } catch (err) {
        procError(err, x.hostPid, 'exe');
        continue;
      }
      if (id) seen.push({ hostPid: x.hostPid, exe: id.path, size: id.size, sha256: id.sha256, same: id.sha256 === want.sha256 });
      deadline.check();
    }
    const ok = seen.length === found.length && gone === 0 && seen.every((x) => x.same);
    const bad = seen.filter((x) => !x.same);
    assertions.push({
      id: 'executable',
      ok,
      expected: `the image's ${want.path} (sha256 ${short(want.sha256)}…, ${want.size} bytes)`,
      actual:
        seen.length === 0
          ? 'the matching process exited during the check'
          : bad.length > 0
            ? bad.map((x) => `pid ${x.hostPid} runs ${x.exe} (sha256 ${short(x.sha256)}…, ${x.size} bytes)`).join('; ')
            : seen.length < found.length
              ? `${found.length - seen.length} of ${found.length} matching processes exited during the check`
              : `the image's ${want.path}`,
    });
    evidence.push(
      note(
        ok ? `进程运行的是镜像中的 ${want.path}` : `进程运行的不是镜像中的 ${want.path}`,
        ok ? `the process runs the image's ${want.path}` : `the process does not run the image's ${want.path}`,
        { expected: want, processes: seen },
      ),
    );
  }
  for (const path of e.opens ?? []) {
    const seen: { hostPid: number; held?: string; filesHeld: number; present: boolean }[] = [];
    let expected;
    for (const x of live) {
      let r;
      try {
        r = await holdsFile(x.hostPid, path);
      } catch (err) {
        procError(err, x.hostPid, `map_files and fd (${path})`);
        continue;
      }
      expected ??= r.expected ?? undefined;
      seen.push({ hostPid: x.hostPid, present: r.expected !== null, filesHeld: r.candidates, ...(r.held ? { held: r.held.path } : {}) });
      deadline.check();
    }
    const ok = seen.length === found.length && gone === 0 && seen.every((x) => x.held !== undefined);
    const missing = seen.filter((x) => x.held === undefined);
    assertions.push({
      id: `opens:${path}`,
      ok,
      expected: `${path} memory-mapped or open by the process`,
      actual:
        seen.length === 0
          ? 'the matching process exited during the check'
          : missing.length > 0
            ? missing.map((x) => (x.present ? `pid ${x.hostPid} holds neither ${path} nor a copy of it` : `no file at ${path} for pid ${x.hostPid}`)).join('; ')
            : seen.map((x) => `pid ${x.hostPid} holds ${x.held}`).join('; '),
    });
    evidence.push(note(ok ? `进程已加载 ${path}` : `进程未加载 ${path}`, ok ? `the process holds ${path}` : `the process does not hold ${path}`, { path, expected, processes: seen }));
  }
  return { assertions, evidence };
}

type HostView =
  | { verdict: 'exited'; matched: number[] }
  | { verdict: Ownership['verdict']; ownership: Ownership; tree: Set<number>; fdsClipped: number[] };

/**
 * Who holds the listening sockets on `port` in the matched processes' network namespaces, from the
 * host's /proc. Throws (fault infrastructure) when the host's /proc does not show the seat's
 * processes or may not be read.
 */
async function hostSockets(all: readonly SeatProcess[], found: readonly SeatProcess[], port: number, deadline: Deadline): Promise<HostView> {
  const visible = await visibleOnHost(all, found, deadline);
  const matched = found.filter((p) => visible.has(p.hostPid)).map((p) => p.hostPid);
  if (matched.length === 0) return { verdict: 'exited', matched: found.map((p) => p.hostPid) };

  // One read of the TCP tables per network namespace (a seat container's processes share one).
  const namespaces = new Set<string>();
  const tables: TcpSocket[] = [];
  for (const pid of matched) {
    let ns: string;
    try {
      ns = await readlink(`${PROC}/${pid}/ns/net`);
    } catch (e) {
      procError(e, pid, 'ns/net');
      continue;
    }
    if (namespaces.has(ns)) continue;
    let read = true;
    for (const family of [4, 6] as const) {
      const file = family === 4 ? 'net/tcp' : 'net/tcp6';
      let text: string;
      try {
        text = await readFile(`${PROC}/${pid}/${file}`, 'utf8');
      } catch (e) {
        // A kernel without IPv6 has no tcp6; tcp missing means the process is gone.
        if (family === 6 && (e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        procError(e, pid, file);
        read = false;
        break;
      }
      try {
        tables.push(...parseProcNetTcp(text, family));
      } catch (e) {
        if (!(e instanceof ProcNetParseError)) throw e;
        throw new DeploylabError({
          code: 'PROBE_HOST_PROC_UNPARSABLE',
          fault: 'bug',
          message: { zh: `无法解析主机的 /proc/${pid}/${file}：${e.message}`, en: `cannot parse the host's /proc/${pid}/${file}: ${e.message}` },
          cause: e,
        });
      }
    }
    // Gone midway: another matched process of the same namespace may still be read.
    if (read) namespaces.add(ns);
  }
  deadline.check();
  const listening = listeningOn(tables, port);
  const wanted = new Set(listening.map((s) => s.inode));
  const holders = new Map<number, number[]>();
  const fdsClipped: number[] = [];
  if (wanted.size > 0) {
    for (const pid of visible.keys()) {
      let fds: string[];
      try {
        fds = await readdir(`${PROC}/${pid}/fd`);
      } catch (e) {
        procError(e, pid, 'fd');
        continue;
      }
      if (fds.length > MAX_FDS_PER_PROCESS) fdsClipped.push(pid);
      for (const fd of fds.slice(0, MAX_FDS_PER_PROCESS)) {
        let link: string;
        try {
          link = await readlink(`${PROC}/${pid}/fd/${fd}`);
        } catch (e) {
          procError(e, pid, `fd/${fd}`); // closed meanwhile: skip it
          continue;
        }
        const inode = socketInode(link);
        if (inode !== null && wanted.has(inode)) holders.set(inode, [...(holders.get(inode) ?? []), pid]);
      }
      deadline.check();
    }
  }
  const tree = processTree([...visible.values()], matched);
  const ownership = judgeOwnership({ port, listening, holders, tree });
  return { verdict: ownership.verdict, ownership, tree, fdsClipped };
}

const listensExpected = (port: number): string => `a socket listening on port ${port} held by the matching process (or one it started), and by no other`;

/** The `listens` assertion and its evidence from what the host's /proc showed. */
function ownershipAssertion(view: HostView, port: number, all: readonly SeatProcess[]): { assertion: Assertion; evidence: Evidence } {
  const expected = listensExpected(port);
  if (view.verdict === 'exited') {
    return {
      assertion: { id: 'listens', ok: false, expected, actual: 'the matching process exited during the check' },
      evidence: note('匹配的进程在检查期间已退出', 'the matching process exited during the check', { hostPids: view.matched }),
    };
  }
  const byPid = new Map(all.map((p) => [p.hostPid, p]));
  const who = (pid: number): string => `${show(byPid.get(pid)?.command ?? '?', 120)} (pid ${pid})`;
  const sockets = view.ownership.sockets.map((s) => ({
    family: s.family === 4 ? 'tcp' : 'tcp6',
    address: `${s.family === 6 ? `[${s.address}]` : s.address}:${s.port}`,
    inode: s.inode,
    ownedByMatch: s.owned,
    holders: s.holders.map((pid) => ({ hostPid: pid, command: show(byPid.get(pid)?.command ?? '?', 300), role: byPid.get(pid)?.role, matchedTree: view.tree.has(pid) })),
  }));
  const data = { port, verdict: view.verdict, sockets, ...(view.fdsClipped.length > 0 ? { fdTablesClipped: view.fdsClipped } : {}) };
  let actual: string;
  let ev: Evidence;
  if (view.verdict === 'nothing-listening') {
    actual = `no socket listens on port ${port} in the process's network namespace`;
    ev = note(`进程所在网络命名空间中没有套接字监听端口 ${port}`, `no socket listens on port ${port} in the process's network namespace`, data);
  } else if (view.verdict === 'owned') {
    const holders = [...new Set(view.ownership.sockets.flatMap((s) => s.holders.filter((h) => view.tree.has(h))))];
    actual = `held by ${holders.map(who).join(', ')}`;
    ev = note(`端口 ${port} 由匹配的进程持有`, `port ${port} is held by the matching process`, data);
  } else {
    const others = [...new Set(view.ownership.sockets.filter((s) => !s.owned).flatMap((s) => s.holders))];
    actual =
      others.length > 0
        ? `held by ${others.map(who).join(', ')}, not by the matching process`
        : "held by no process of the seat's list, not by the matching process";
    ev = note(
      `端口 ${port} 由其他进程持有：${others.map(who).join('，') || '考位进程列表之外的进程'}`,
      `port ${port} is held by another process: ${others.map(who).join(', ') || "one outside the seat's process list"}`,
      data,
    );
  }
  return { assertion: { id: 'listens', ok: view.verdict === 'owned', expected, actual }, evidence: ev };
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
    let unjudged: DeploylabError | undefined;
    if (e.executable !== undefined || e.opens !== undefined) {
      try {
        const id = await identityAssertions(seat, p, found, all, deadline);
        a.push(...id.assertions);
        evidence.push(...id.evidence);
      } catch (err) {
        if (!isDeploylabError(err) || err.code === 'PROBE_DEADLINE' || err.fault === 'config') throw err;
        unjudged = err;
      }
    }
    if (e.threads !== undefined) {
      try {
        if (found.length === 0) a.push(...judgeThreads([], e.threads).assertions);
        else {
          const visible = await visibleOnHost(all, found, deadline);
          const per = [];
          for (const x of found) {
            let threads = null;
            try {
              threads = visible.has(x.hostPid) ? await readThreads(x.hostPid) : null;
            } catch (err) {
              procError(err, x.hostPid, 'task/*/stat and status');
            }
            per.push({ hostPid: x.hostPid, threads });
          }
          deadline.check();
          const t = judgeThreads(per, e.threads);
          a.push(...t.assertions);
          evidence.push(note('各线程的 CPU 使用（主机 /proc）', "the process's threads and their CPU use (the host's /proc)", { expect: e.threads, processes: t.figures }));
        }
      } catch (err) {
        if (!isDeploylabError(err) || err.code === 'PROBE_DEADLINE') throw err;
        unjudged ??= err;
      }
    }
    if (e.listens !== undefined) {
      if (found.length === 0) {
        a.push({ id: 'listens', ok: false, expected: listensExpected(e.listens), actual: '(no process)' });
      } else {
        try {
          const o = ownershipAssertion(await hostSockets(all, found, e.listens, deadline), e.listens, all);
          a.push(o.assertion);
          evidence.push(o.evidence);
        } catch (err) {
          if (!isDeploylabError(err) || err.code === 'PROBE_DEADLINE') throw err;
          unjudged ??= err;
        }
      }
      // The socket may be the right one and still not reachable from the harness (bound to loopback).
      const r = await accepts(seat, p.container, e.listens, deadline);
      deadline.check();
      if (!r.ok) {
        // Nothing answering is the candidate's unless the harness's own path is down.
        const o = await judgeUnreachable(seat, { zh: `端口 ${e.listens} 不可达`, en: `port ${e.listens} unreachable` }, evidence);
        if (o.status === 'error') return o;
      }
      a.push({ id: 'accepts', ok: r.ok, expected: `port ${e.listens} accepts connections`, actual: r.code });
    }
    if (unjudged) {
      const why = note(`未能从主机判断进程的身份或端口归属：${unjudged.zh}`, `the process's identity or port ownership was not judged from the host: ${unjudged.message}`, { code: unjudged.code });
      // Another expectation failing settles the outcome; otherwise the harness could not judge.
      if (a.some((x) => !x.ok)) return judge(a, 'all', { zh: '进程检查', en: 'process check' }, [...evidence, why]);
      return errored(unjudged, [...evidence, why, note('其余各项检查结果', 'the other expectations', { assertions: a })]);
    }
    return judge(a, 'all', { zh: '进程检查', en: 'process check' }, evidence);
  },
});
