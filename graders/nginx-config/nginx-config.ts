/**
 * `nginx-config` probe: the configuration an nginx master process has in force, followed for one
 * request, never a grep of the file.
 *
 * 1. Identity, from the host: the seat's processes titled "nginx: master process", of which
 *    exactly one must run the image's nginx (its /proc/<pid>/exe has the content of the file the
 *    seat's image ships at `master.executable`), started with `-c master.config`.
 * 2. In force: the harness reloads that master (SIGHUP from the host, what `nginx -s reload`
 *    sends) and waits for new worker processes. nginx starts them only once it has read and
 *    accepted the files, so the files read before and after, unchanged in between (same inode,
 *    status-change time and content), are the configuration that runs. A file edited after nginx
 *    started without a reload is thereby put in force (and then judged by every later check); a
 *    file nginx refuses to load fails here, as it leaves the old configuration running.
 *    Timestamps alone cannot settle it: process start times have a 10 ms resolution, and a shell
 *    replaces a file within milliseconds of `nginx` returning.
 * 3. The files are read as the master sees them (/proc/<pid>/root, symlinks resolved inside it:
 *    host-root.ts), the main file with `-g` directives first and every include expanded in place
 *    (parsers/nginx-config.ts), and the request is followed: the server the harness's connection
 *    reaches, the location nginx picks for the path, the rewrite phases, and the limit_req in
 *    force there with its inheritance; the zone it names must have one of the expected keys and
 *    the rate, with the expected burst and limit_req_status, and not be a dry run.
 *
 * Where the host's /proc does not show the seat's processes (Kubernetes pods, a remote engine, a
 * harness without root) nothing here can be judged: an `error`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ErrorCode } from '../../runner/core/error-codes.js';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { z } from 'zod';
import { DeploylabError, isDeploylabError } from '../../runner/core/errors.js';
import { judge, show, type Assertion } from '../shared/assertions.js';
import { capability } from '../capabilities.js';
import { globInRoot, HostRoot, RootError } from '../shared/host-root.js';
import { executableOf } from '../shared/process-identity.js';
import {
  followRequest,
  loadNginxConfig,
  parseRate,
  ratePerSecond,
  type LoadedNginxConfig,
  type NginxFileSource,
  type RouteResult,
} from '../parsers/nginx-config.js';
import { defineProbe, failed, note, type Deadline, type Evidence, type SeatProcess } from '../probe.js';
import { NginxConfigParamsSchema } from './params.js';

export type NginxConfigParams = z.output<typeof NginxConfigParamsSchema>;

/** A config file read at most (Debian's mime.types is 5 kB). */
const FILE_MAX_BYTES = 1024 * 1024;
/** Files of one configuration at most. */
const MAX_FILES = 200;
/** How long a reload may take to show new workers. */
const RELOAD_WAIT_MS = 8_000;

const TITLE = /^nginx: master process\s*/;

function cannotSee(code: ErrorCode, zh: string, en: string, cause?: unknown): DeploylabError {
  return new DeploylabError({
    code,
    fault: 'infrastructure',
    message: { zh: `无法从主机查看 nginx 进程：${zh}`, en: `cannot see the nginx process from the host: ${en}` },
    hint: { zh: '在容器引擎所在主机上以 root 运行评分程序（Docker 驱动）', en: "run the grader as root on the engine's host (Docker driver)" },
    ...(cause !== undefined ? { cause } : {}),
  });
}

function hostProcError(e: unknown, pid: number, what: string): DeploylabError {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'EACCES' || code === 'EPERM'
    ? cannotSee('PROBE_HOST_PROC_DENIED', `无权读取主机进程 ${pid} 的 ${what}`, `no permission to read ${what} of host process ${pid}`, e)
    : cannotSee('PROBE_HOST_PROC_FAILED', `读取主机进程 ${pid} 的 ${what} 失败（${code}）`, `reading ${what} of host process ${pid} failed (${code})`, e);
}

/** The options nginx was started with, from the master's title ("nginx: master process <argv>"). */
export function masterOptions(command: string): { argv0: string; c?: string; p?: string; g?: string } {
  const words = command.replace(TITLE, '').split(' ').filter((w) => w !== '');
  const out: { argv0: string; c?: string; p?: string; g?: string } = { argv0: words[0] ?? '' };
  const isFlag = (w: string): boolean => /^-[?hvVtTqspecg]/.test(w);
  for (let i = 1; i < words.length; i++) {
    const w = words[i]!;
    const m = /^-([cpg])(.*)$/.exec(w);
    if (!m) continue;
    const flag = m[1] as 'c' | 'p' | 'g';
    if (flag === 'g') {
      // The title joins argv with spaces: -g's text runs up to the next option.
      const parts = m[2] ? [m[2]] : [];
      while (i + 1 < words.length && !isFlag(words[i + 1]!)) parts.push(words[++i]!);
      out.g = parts.join(' ');
    } else {
      out[flag] = m[2] || words[++i] || '';
    }
  }
  return out;
}

async function hostCommand(pid: number): Promise<string | null> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replace(/\0+$/, '').split('\0').join(' ');
  } catch {
    return null;
  }
}

interface FileRecord {
  path: string;
  real: string;
  size: number;
  sha256: string;
  ino: string;
  ctimeNs: string;
}

/** Read the configuration through the master's root, recording each file's identity. */
async function readConfig(root: HostRoot, main: string, params: string | undefined): Promise<{ loaded: LoadedNginxConfig; files: FileRecord[] }> {
  const files: FileRecord[] = [];
  const src: NginxFileSource = {
    async read(path) {
      if (files.length >= MAX_FILES) {
        throw new DeploylabError({ code: 'NGINX_CONF_TOO_MANY_FILES', fault: 'candidate', message: { zh: `配置包含的文件超过 ${MAX_FILES} 个`, en: `the configuration includes more than ${MAX_FILES} files` } });
      }
      let f;
      try {
        f = await root.readFile(path, FILE_MAX_BYTES);
      } catch (e) {
        if (e instanceof RootError) {
          throw new DeploylabError({
            code: e.code === 'LOOP' ? 'NGINX_CONF_SYMLINK_LOOP' : 'NGINX_CONF_NOT_A_FILE',
            fault: 'candidate',
            message: e.code === 'LOOP' ? { zh: `符号链接层数过多：${path}`, en: `too many symlinks: ${path}` } : { zh: `不是普通文件：${path}`, en: `not a regular file: ${path}` },
          });
        }
        throw e;
      }
      if (!f) return null;
      if (f.truncated) {
        throw new DeploylabError({ code: 'NGINX_CONF_TOO_LARGE', fault: 'candidate', message: { zh: `配置文件超过 1 MiB：${path}`, en: `configuration file over 1 MiB: ${path}` } });
      }
      files.push({ path, real: f.real, size: f.size, sha256: createHash('sha256').update(f.data).digest('hex'), ino: `${f.dev}:${f.ino}`, ctimeNs: String(f.ctimeNs) });
      return f.data.toString('utf8');
    },
    glob: (pattern) => globInRoot(root, pattern),
  };
  const loaded = await loadNginxConfig(main, src, params ? { params } : {});
  return { loaded, files };
}


function workersOf(all: readonly SeatProcess[], master: number): SeatProcess[] {
  return all.filter((x) => x.ppid === master && /^nginx: worker process$/.test(x.command.trim()));
}

function routeEvidence(r: RouteResult): Record<string, unknown> {
  return {
    server: r.server,
    listen: r.listen,
    serverChosen: r.serverWhy,
    locations: r.locations,
    uri: r.uri,
    ...(r.answeredBy ? { answeredBy: r.answeredBy } : {}),
    limitReq: r.limits.map((l) => ({ at: l.at, level: l.level, zone: l.zone ? { name: l.zone.name, key: l.zone.key, rate: `${l.zone.rate.count}r/${l.zone.rate.per}`, at: l.zone.at } : `no zone ${l.use.zone}` })),
    limitReqStatus: r.status,
    limitReqDryRun: r.dryRun,
    proxyPass: r.proxyPass,
  };
}

function candidateFail(e: unknown, evidence: Evidence[]): ReturnType<typeof failed> | null {
  if (isDeploylabError(e) && e.fault === 'candidate') return failed({ zh: e.zh, en: e.message }, [...evidence, note(e.zh, e.message, { code: e.code, ...(e.details ?? {}) })]);
  return null;
}

export const nginxConfigProbe = defineProbe({
  kind: 'nginx-config',
  params: NginxConfigParamsSchema,
  async run(seat, p, deadline: Deadline) {
    const what = { zh: `nginx 生效配置（${p.request.method} ${p.request.path}，端口 ${p.request.port}）`, en: `nginx configuration in force (${p.request.method} ${p.request.path} on port ${p.request.port})` };
    const all = await seat.listProcesses();
    const titled = all.filter((x) => x.role === p.container && TITLE.test(x.command));
    const evidence: Evidence[] = [];
    if (titled.some((x) => x.pidNamespace === 'pod')) throw cannotSee('PROBE_HOST_PIDS_UNAVAILABLE', '考位的进程号是 Pod 内的进程号', "the seat's PIDs are a pod's own, not the host's");
    const want = await capability(seat, 'image-files')(p.master.executable, { container: p.container });
    if (!want) {
      throw new DeploylabError({ code: 'PROBE_IMAGE_FILE_MISSING', fault: 'config', message: { zh: `考位镜像中没有 ${p.master.executable}`, en: `the seat's image has no ${p.master.executable}` } });
    }
    const masters: SeatProcess[] = [];
    const seen: Record<string, unknown>[] = [];
    let invisible = 0;
    for (const x of titled) {
      // The listed PID must be that process in this machine's /proc (ps may clip long lines).
      const live = await hostCommand(x.hostPid);
      if (live === null || !live.startsWith(x.command.trim().slice(0, 60))) {
        invisible++;
        continue;
      }
      let id;
      try {
        id = await executableOf(x.hostPid);
      } catch (e) {
        throw hostProcError(e, x.hostPid, 'exe');
      }
      if (!id) continue; // exited
      seen.push({ hostPid: x.hostPid, user: x.user, command: show(x.command, 300), exe: id.path, sameAsImage: id.sha256 === want.sha256 });
      if (id.sha256 === want.sha256) masters.push(x);
    }
    if (titled.length > 0 && invisible === titled.length) {
      throw cannotSee('PROBE_HOST_PIDS_UNAVAILABLE', '本机 /proc 中看不到考位的进程', "the seat's processes do not show in this machine's /proc");
    }
    evidence.push(note('nginx 主进程', 'nginx master processes', { executable: want, processes: seen }));
    if (masters.length !== 1) {
      return failed(
        masters.length === 0
          ? { zh: `没有运行镜像中 ${p.master.executable} 的 nginx 主进程`, en: `no nginx master process runs the image's ${p.master.executable}` }
          : { zh: `有 ${masters.length} 个 nginx 主进程，应只有一个`, en: `${masters.length} nginx master processes run; there must be one` },
        evidence,
      );
    }
    const master = masters[0]!;
    const opts = masterOptions(master.command);
    if (opts.c !== p.master.config) {
      return failed({ zh: `nginx 以 -c ${opts.c ?? '（默认）'} 启动，不是 ${p.master.config}`, en: `nginx was started with -c ${opts.c ?? '(default)'}, not ${p.master.config}` }, evidence);
    }

    let root: HostRoot;
    try {
      root = await HostRoot.open(`/proc/${master.hostPid}/root`);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return failed({ zh: 'nginx 主进程在检查期间退出', en: 'the nginx master exited during the check' }, evidence);
      throw hostProcError(e, master.hostPid, 'root');
    }
    let before: Awaited<ReturnType<typeof readConfig>>;
    let after: Awaited<ReturnType<typeof readConfig>>;
    try {
      try {
        before = await readConfig(root, p.master.config, opts.g);
      } catch (e) {
        const f = candidateFail(e, evidence);
        if (f) return f;
        throw e;
      }
      // Reload from the host and wait for workers of the new configuration.
      const oldWorkers = new Set(workersOf(all, master.hostPid).map((x) => x.hostPid));
      const live = await hostCommand(master.hostPid);
      if (live === null || !TITLE.test(live)) return failed({ zh: 'nginx 主进程在检查期间退出', en: 'the nginx master exited during the check' }, evidence);
      try {
        process.kill(master.hostPid, 'SIGHUP');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ESRCH') return failed({ zh: 'nginx 主进程在检查期间退出', en: 'the nginx master exited during the check' }, evidence);
        throw hostProcError(e, master.hostPid, 'signal');
      }
      const t0 = Date.now();
      let fresh: SeatProcess[] = [];
      let masterGone = false;
      while (Date.now() - t0 < Math.min(RELOAD_WAIT_MS, deadline.remainingMs() - 3_000)) {
        await sleep(250);
        const now = await seat.listProcesses();
        if (!now.some((x) => x.hostPid === master.hostPid)) {
          masterGone = true;
          break;
        }
        fresh = workersOf(now, master.hostPid).filter((x) => !oldWorkers.has(x.hostPid));
        if (fresh.length > 0) break;
      }
      const reload = { signal: 'SIGHUP', master: master.hostPid, workersBefore: [...oldWorkers], newWorkers: fresh.map((x) => x.hostPid), waitedMs: Date.now() - t0 };
      evidence.push(note('评分程序重新加载 nginx（SIGHUP）', 'the harness reloaded nginx (SIGHUP)', reload));
      if (masterGone) return failed({ zh: 'nginx 主进程在重新加载时退出', en: 'the nginx master exited on reload' }, evidence);
      if (fresh.length === 0) {
        deadline.check();
        return failed(
          {
            zh: `nginx 未能加载 ${p.master.config} 的当前内容（重新加载后没有新的工作进程，原配置继续运行；原因见 nginx 的错误日志）`,
            en: `nginx did not load ${p.master.config} as it is now (no new worker after a reload: the old configuration keeps running; nginx's error log says why)`,
          },
          evidence,
        );
      }
      try {
        after = await readConfig(root, p.master.config, opts.g);
      } catch (e) {
        const f = candidateFail(e, evidence);
        if (f) return f;
        throw e;
      }
    } finally {
      await root.close();
    }
    const key = (f: FileRecord): string => `${f.path}\0${f.real}\0${f.ino}\0${f.ctimeNs}\0${f.sha256}`;
    const same = before.files.length === after.files.length && before.files.every((f, i) => key(f) === key(after.files[i]!));
    evidence.push(note('nginx 加载的配置文件', 'the files nginx loaded', { mainFile: p.master.config, commandLineDirectives: opts.g ?? null, files: after.files }));
    if (!same) {
      return failed({ zh: '配置文件在评分程序重新加载 nginx 期间被改动', en: 'the configuration files changed while the harness reloaded nginx' }, [
        ...evidence,
        note('重新加载前读到的文件', 'the files read before the reload', { files: before.files }),
      ]);
    }

    // Follow the harness's request through it.
    const ep = await seat.endpoint(p.request.port, { container: p.container });
    const q = p.request.path.indexOf('?');
    const rawPath = q < 0 ? p.request.path : p.request.path.slice(0, q);
    let uri: string;
    try {
      uri = decodeURIComponent(rawPath).replace(/\/{2,}/g, '/');
    } catch {
      uri = rawPath;
    }
    let route: RouteResult | { none: string };
    try {
      route = followRequest(after.loaded.directives, {
        port: p.request.port,
        address: ep.host,
        host: ep.host,
        method: p.request.method,
        uri,
        args: q < 0 ? '' : p.request.path.slice(q + 1),
        superuser: master.user === 'root',
      });
    } catch (e) {
      const f = candidateFail(e, evidence);
      if (f) return f;
      throw e;
    }
    if ('none' in route) return failed({ zh: `没有 server 处理该请求：${route.none}`, en: `no server handles the request: ${route.none}` }, evidence);
    evidence.push(note('请求经过的配置', 'how nginx handles the request', routeEvidence(route)));

    const e = p.expect.limitReq;
    const wantRate = parseRate(e.rate)!;
    const a: Assertion[] = [];
    a.push({
      id: 'reachesLimits',
      ok: route.answeredBy === undefined,
      expected: 'the request reaches the preaccess phase, where limit_req runs',
      actual: route.answeredBy ? `answered before limit_req by ${route.answeredBy.text} (${route.answeredBy.file}:${route.answeredBy.line})` : 'yes',
    });
    const describe = (l: RouteResult['limits'][number]): string =>
      `${l.at.text} (${l.level}, ${l.at.file}:${l.at.line}) → ${l.zone ? `zone ${l.zone.name} key ${l.zone.key} rate ${l.zone.rate.count}r/${l.zone.rate.per}` : `no zone "${l.use.zone}"`}`;
    const fit = route.limits.find((l) => l.zone !== null && e.keys.includes(l.zone.key) && ratePerSecond(l.zone.rate) === ratePerSecond(wantRate) && (e.burst === undefined || l.use.burst === e.burst));
    a.push({
      id: 'limitReq',
      ok: fit !== undefined && route.answeredBy === undefined,
      expected: `a limit_req in force whose zone is keyed on ${e.keys.join(' or ')} at ${e.rate}${e.burst !== undefined ? `, with burst=${e.burst}` : ''}`,
      actual: route.limits.length === 0 ? `no limit_req applies to location ${route.locations.at(-1)?.text ?? '(none)'}` : route.limits.map(describe).join('; '),
    });
    a.push({ id: 'dryRun', ok: !route.dryRun.value, expected: 'limit_req_dry_run off', actual: route.dryRun.value ? `on (${route.dryRun.at?.file}:${route.dryRun.at?.line})` : 'off' });
    if (e.status !== undefined) {
      a.push({ id: 'status', ok: route.status.value === e.status, expected: `limit_req_status ${e.status}`, actual: `${route.status.value}${route.status.at ? ` (${route.status.at.file}:${route.status.at.line})` : ' (nginx default)'}` });
    }
    return judge(a, 'all', what, evidence);
  },
});
