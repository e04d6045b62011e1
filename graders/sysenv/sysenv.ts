/**
 * `sysenv` probe: the seat's basic system environment as it is in force, judged from outside:
 * accounts from the seat's own /etc/passwd, /etc/group and shadow files (archive API); ownership
 * and modes of folders from the file system's metadata (the host's /proc/<pid>/root); what a
 * login shell of each user really has, by the grader's own bash in the trusted toolbox running
 * copies of the seat's startup files; a venv's interpreter and installed files by content; the
 * system interpreter's import paths; and a service's identity and environment from the host's
 * /proc (exe by content, argv as the kernel has it, real uid, open files, environ).
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { DeploylabError, isDeploylabError } from '../../runner/core/errors.js';
import { capability } from '../capabilities.js';
import { cmdlineText, sameCommand } from '../parsers/proc-net.js';
import { judge, show, type Assertion } from '../shared/assertions.js';
import { executableOf, PROC, sha256Of } from '../shared/process-identity.js';
import { clip, defineProbe, note, type Deadline, type Evidence, type ProbeOutcome, type SeatHandle, type SeatProcess } from '../probe.js';
import { SysenvParamsSchema, type SysenvParams } from './params.js';
import { importableAs, moduleOf, normalize, parseEnviron, parseGroup, parsePasswd, parsePyvenvCfg, pthEntries, shadowNames, type GroupEntry, type PasswdEntry } from './parse.js';
import { containerRoot, seatFsAt, type SeatFs } from './seat-fs.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const octal = (m: number): string => `0${m.toString(8).padStart(3, '0')}`;
const parseMode = (s: string): number => parseInt(s, 8);

/** What the probe reads, so tests can give a temporary directory for the seat's file system. */
export interface SysenvContext {
  seat: SeatHandle;
  fs: SeatFs;
  processes: SeatProcess[];
  deadline: Deadline;
}

interface Users {
  passwd: PasswdEntry[];
  group: GroupEntry[];
  text: { passwd: string; group: string };
}

async function text(seat: SeatHandle, path: string, container: string): Promise<string | null> {
  const f = await seat.readFile(path, { container, maxBytes: 4 * 1024 * 1024 });
  return f ? f.data.toString('utf8') : null;
}

async function users(seat: SeatHandle, container: string): Promise<Users> {
  const passwd = (await text(seat, '/etc/passwd', container)) ?? '';
  const group = (await text(seat, '/etc/group', container)) ?? '';
  return { passwd: parsePasswd(passwd), group: parseGroup(group), text: { passwd, group } };
}

const userNamed = (u: Users, name: string): PasswdEntry | undefined => u.passwd.find((e) => e.name === name);
const groupNamed = (u: Users, name: string): GroupEntry | undefined => u.group.find((e) => e.name === name);

// ---------------------------------------------------------------------------------------------

async function account(ctx: SysenvContext, p: SysenvParams, a: NonNullable<SysenvParams['account']>): Promise<ProbeOutcome> {
  const { seat, fs } = ctx;
  const u = await users(seat, p.container);
  const shadow = shadowNames((await text(seat, '/etc/shadow', p.container)) ?? '', 9);
  const gshadow = shadowNames((await text(seat, '/etc/gshadow', p.container)) ?? '', 4);
  const as: Assertion[] = [];
  const entries = u.passwd.filter((e) => e.name === a.user);
  const user = entries[0];
  as.push({ id: 'user', ok: entries.length === 1, expected: `one /etc/passwd entry for ${a.user}`, actual: `${entries.length} (lines ${entries.map((e) => e.line).join(', ') || '-'})` });
  const inRange = (v: number, r: { min: number; max: number }): boolean => v >= r.min && v <= r.max;
  if (user) {
    const sameUid = u.passwd.filter((e) => e.uid === user.uid);
    as.push({ id: 'uid', ok: inRange(user.uid, a.uid) && sameUid.length === 1, expected: `a uid of its own in ${a.uid.min}..${a.uid.max}`, actual: `${user.uid}${sameUid.length > 1 ? ` (shared with ${sameUid.filter((e) => e !== user).map((e) => e.name).join(', ')})` : ''}` });
    const primary = u.group.filter((g) => g.gid === user.gid);
    as.push({ id: 'primary-group', ok: primary.length === 1 && primary[0]!.name === a.group, expected: `primary group ${a.group}`, actual: primary.length === 0 ? `gid ${user.gid} has no /etc/group entry` : primary.map((g) => `${g.name} (gid ${g.gid})`).join(', ') });
    as.push({ id: 'home', ok: user.home === a.home, expected: a.home, actual: user.home });
    as.push({ id: 'shell', ok: user.shell === a.shell, expected: a.shell, actual: user.shell });
    as.push({ id: 'shadow', ok: shadow.has(a.user), expected: `an /etc/shadow entry for ${a.user}`, actual: shadow.has(a.user) ? 'present' : 'absent' });
  }
  const groups = u.group.filter((g) => g.name === a.group);
  const group = groups[0];
  as.push({ id: 'group', ok: groups.length === 1 && inRange(group!.gid, a.gid) && u.group.filter((g) => g.gid === group!.gid).length === 1, expected: `one group ${a.group} with a gid of its own in ${a.gid.min}..${a.gid.max}`, actual: groups.map((g) => `gid ${g.gid} (line ${g.line})`).join(', ') || 'absent' });
  if (group) as.push({ id: 'gshadow', ok: gshadow.has(a.group), expected: `an /etc/gshadow entry for ${a.group}`, actual: gshadow.has(a.group) ? 'present' : 'absent' });
  for (const m of a.members) {
    const real = userNamed(u, m);
    as.push({ id: `member:${m}`, ok: !!group && !!real && group.members.includes(m), expected: `${m} (an existing user) a member of ${a.group}`, actual: group ? `members: ${group.members.join(',') || '(none)'}${real ? '' : `; no user ${m}`}` : 'no group' });
  }
  if (a.homeMode !== undefined) {
    const st = await fs.lstat(a.home);
    const ok = !!st && st.type === 'directory' && !!user && st.uid === user.uid && !!group && st.gid === group.gid && st.mode === parseMode(a.homeMode);
    as.push({ id: 'home-dir', ok, expected: `directory ${a.home}, ${a.user}:${a.group}, mode ${octal(parseMode(a.homeMode))}`, actual: st ? `${st.type}, uid ${st.uid} gid ${st.gid}, mode ${octal(st.mode)}` : 'absent' });
  }
  const ev: Evidence[] = [note('考位的用户与组数据库', "the seat's user and group databases", { passwd: entries, group: groups, shadowEntry: shadow.has(a.user), gshadowEntry: gshadow.has(a.group) })];
  return judge(as, 'all', { zh: `系统账户 ${a.user}`, en: `system account ${a.user}` }, ev);
}

async function paths(ctx: SysenvContext, p: SysenvParams, list: NonNullable<SysenvParams['paths']>): Promise<ProbeOutcome> {
  const u = await users(ctx.seat, p.container);
  const as: Assertion[] = [];
  const seen: Record<string, unknown>[] = [];
  for (const want of list) {
    const st = await ctx.fs.lstat(want.path);
    const owner = userNamed(u, want.owner);
    const group = groupNamed(u, want.group);
    const mode = parseMode(want.mode);
    const ownerName = st ? (u.passwd.find((e) => e.uid === st.uid)?.name ?? String(st.uid)) : '';
    const groupName = st ? (u.group.find((g) => g.gid === st.gid)?.name ?? String(st.gid)) : '';
    const ok = !!st && st.type === want.type && !!owner && st.uid === owner.uid && !!group && st.gid === group.gid && st.mode === mode;
    as.push({
      id: want.path,
      ok,
      expected: `${want.type}, ${want.owner}:${want.group}, mode ${octal(mode)}`,
      actual: st ? `${st.type}, ${ownerName}:${groupName} (${st.uid}:${st.gid}), mode ${octal(st.mode)}` : 'absent',
    });
    seen.push({ path: want.path, ...(st ?? { absent: true }) });
  }
  return judge(as, 'all', { zh: '目录与权限', en: 'folders and modes' }, [note('文件系统元数据（主机侧读取）', 'file system metadata, read from the host', { entries: seen })]);
}

// ---------------------------------------------------------------------------------------------
// Login shells, by the grader's own bash

/** Startup files bash reads for a user's login shell (and, interactive, bash.bashrc via /etc/profile). */
const DOTFILES = ['.bash_profile', '.bash_login', '.profile', '.bashrc'];
const STAGE = '/seat';

/** Shell code that reports each variable: `@@ NAME <base64 of its value>`, or `@@ NAME -` when unset. */
export function printCommand(vars: readonly string[]): string {
  return vars.map((v) => `if [ "\${${v}+x}" ]; then printf '@@ %s %s\\n' ${v} "$(printf %s "$${v}" | base64 -w0)"; else printf '@@ %s -\\n' ${v}; fi`).join('; ');
}

export function loginScript(users: readonly string[], vars: readonly string[], nonce: string): string {
  const print = printCommand(vars);
  const q = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;
  return [
    'rm -rf /etc/profile.d; rm -f /etc/profile /etc/bash.bashrc; mkdir -p /etc/profile.d',
    `if [ -d ${STAGE}/etc ]; then cp -a ${STAGE}/etc/. /etc/; fi`,
    ...users.flatMap((u) => {
      const home = `${STAGE}-home/${u}`;
      const env = `env -i HOME=${home} USER=${u} LOGNAME=${u} SHELL=/bin/bash TERM=dumb PATH=/usr/local/bin:/usr/bin:/bin`;
      return [
        `mkdir -p ${home}`,
        `echo '##${nonce} ${u} login'; cd ${home} && timeout 10 ${env} bash --login -c ${q(print)} </dev/null 2>/dev/null`,
        `echo '##${nonce} ${u} interactive'; cd ${home} && timeout 10 ${env} bash --login -i -c ${q(print)} </dev/null 2>/dev/null`,
      ];
    }),
    `echo '##${nonce} end'`,
  ].join('\n');
}

/** user → shell mode → variable → value (null: unset); the last report of a block wins. */
export function parseLoginOutput(out: string, nonce: string): Map<string, Map<string, Map<string, string | null>>> {
  const res = new Map<string, Map<string, Map<string, string | null>>>();
  let cur: Map<string, string | null> | undefined;
  for (const line of out.split('\n')) {
    const h = line.startsWith(`##${nonce} `) ? line.slice(nonce.length + 3).split(' ') : null;
    if (h) {
      if (h[0] === 'end' || h.length !== 2) {
        cur = undefined;
        continue;
      }
      const byMode = res.get(h[0]!) ?? new Map<string, Map<string, string | null>>();
      res.set(h[0]!, byMode);
      cur = new Map();
      byMode.set(h[1]!, cur);
      continue;
    }
    const m = /^@@ ([A-Za-z_][A-Za-z0-9_]*) (-|[A-Za-z0-9+/=]*)$/.exec(line);
    if (m && cur) cur.set(m[1]!, m[2] === '-' ? null : Buffer.from(m[2]!, 'base64').toString('utf8'));
  }
  return res;
}

async function loginEnv(ctx: SysenvContext, p: SysenvParams, l: NonNullable<SysenvParams['loginEnv']>): Promise<ProbeOutcome> {
  const { seat, fs } = ctx;
  const run = capability(seat, 'toolbox');
  const u = await users(seat, p.container);
  const copy: { from: string; to: string; container: string }[] = [];
  const copied: string[] = [];
  const add = async (path: string, to: string): Promise<void> => {
    const real = await fs.resolve(path);
    if (real === null || (await fs.lstat(real))?.type !== 'file') return;
    copy.push({ from: real, to, container: p.container });
    copied.push(path === real ? path : `${path} → ${real}`);
  };
  await add('/etc/profile', `${STAGE}/etc/profile`);
  await add('/etc/bash.bashrc', `${STAGE}/etc/bash.bashrc`);
  for (const name of (await fs.list('/etc/profile.d')) ?? []) await add(`/etc/profile.d/${name}`, `${STAGE}/etc/profile.d/${name}`);
  const as: Assertion[] = [];
  const known: string[] = [];
  for (const name of l.users) {
    const e = userNamed(u, name);
    if (!e) {
      as.push({ id: `user:${name}`, ok: false, expected: `user ${name} in /etc/passwd`, actual: 'absent' });
      continue;
    }
    known.push(name);
    for (const f of DOTFILES) await add(`${e.home.replace(/\/+$/, '')}/${f}`, `${STAGE}-home/${name}/${f}`);
  }
  ctx.deadline.check();
  const nonce = createHash('sha256').update(`${Date.now()}:${Math.random()}`).digest('hex').slice(0, 16);
  const vars = Object.keys(l.vars);
  const r = await run({ copy, cmd: ['bash', '-c', loginScript(known, vars, nonce)], timeoutMs: Math.min(60_000, Math.max(5000, ctx.deadline.remainingMs() - 1000)) });
  const evidence: Evidence[] = [
    note('评分方在可信工具箱中用自己的 bash 运行考位的启动文件副本', "the grader's own bash in the trusted toolbox ran copies of the seat's startup files", { files: copied }),
    { kind: 'command', argv: ['bash', '--login', '(-i)', '-c', `print ${vars.join(' ')}`], where: r.where, exitCode: r.exitCode, stdout: clip(r.stdout), stderr: clip(r.stderr), durationMs: r.durationMs },
  ];
  if (r.timedOut || !r.stdout.includes(`##${nonce} end`)) {
    throw new DeploylabError({
      code: 'TOOLBOX_FAILED',
      fault: 'infrastructure',
      message: { zh: '工具箱中的登录 shell 读数未完成', en: 'the login-shell reading in the toolbox did not complete' },
      details: { exitCode: r.exitCode, timedOut: r.timedOut, stderr: r.stderr.slice(-500) },
    });
  }
  const got = parseLoginOutput(r.stdout, nonce);
  for (const name of known) {
    for (const mode of ['login', 'interactive']) {
      const values = got.get(name)?.get(mode);
      for (const [k, v] of Object.entries(l.vars)) {
        const seen = values?.get(k);
        as.push({ id: `${name}/${mode}/${k}`, ok: seen === v, expected: v, actual: seen === undefined ? '(no reading)' : seen === null ? '(unset)' : seen });
      }
    }
  }
  return judge(as, 'all', { zh: '各用户登录 shell 的环境变量', en: "every user's login-shell environment" }, evidence);
}

// ---------------------------------------------------------------------------------------------
// The venv and the system interpreter

const distName = (n: string): string => n.toLowerCase().replace(/[-_.]+/g, '_');

async function venv(ctx: SysenvContext, p: SysenvParams, v: NonNullable<SysenvParams['venv']>): Promise<ProbeOutcome> {
  const { seat, fs } = ctx;
  const as: Assertion[] = [];
  const cfgText = await text(seat, `${v.path}/pyvenv.cfg`, p.container).catch((e: unknown) => {
    if (isDeploylabError(e) && e.fault === 'candidate') return null;
    throw e;
  });
  const cfg = cfgText === null ? null : parsePyvenvCfg(cfgText);
  as.push({ id: 'pyvenv.cfg', ok: cfg !== null, expected: `${v.path}/pyvenv.cfg`, actual: cfg ? 'present' : 'absent' });
  if (cfg) {
    const iss = (cfg.get('include-system-site-packages') ?? 'false').toLowerCase();
    as.push({ id: 'no-system-site', ok: iss === 'false', expected: 'include-system-site-packages = false', actual: iss });
    const ver = cfg.get('version') ?? cfg.get('version_info') ?? '';
    as.push({ id: 'version', ok: ver === v.pythonVersion || ver.startsWith(`${v.pythonVersion}.`), expected: `Python ${v.pythonVersion}`, actual: ver || '(none)' });
  }
  const want = await capability(seat, 'image-files')(v.basePython, { container: p.container });
  if (!want) {
    throw new DeploylabError({ code: 'PROBE_IMAGE_FILE_MISSING', fault: 'config', message: { zh: `考位镜像中没有 ${v.basePython}`, en: `the seat's image has no ${v.basePython}` }, details: { path: v.basePython } });
  }
  const py = await fs.resolve(`${v.path}/bin/python`);
  const pySha = py === null ? null : await fs.sha256(py);
  as.push({ id: 'interpreter', ok: pySha === want.sha256, expected: `${v.path}/bin/python is the image's ${want.path} (sha256 ${want.sha256.slice(0, 12)}…)`, actual: py === null ? 'absent' : `${py} (sha256 ${pySha?.slice(0, 12) ?? '-'}…)` });
  const site = `${v.path}/lib/python${v.pythonVersion}/site-packages`;
  const entries = (await fs.list(site)) ?? [];
  const dists = entries.filter((e) => e.endsWith('.dist-info') && distName(e.slice(0, e.slice(0, -'.dist-info'.length).lastIndexOf('-'))) === distName(v.package.name));
  const wantDist = `${distName(v.package.name)}-${v.package.version}.dist-info`;
  as.push({ id: 'dist-info', ok: dists.length === 1 && dists[0] === wantDist, expected: `only ${wantDist} in ${site}`, actual: dists.join(', ') || '(none)' });
  const files: Record<string, unknown>[] = [];
  for (const [rel, digest] of Object.entries(v.package.files)) {
    let got: string | null = null;
    try {
      const f = await seat.readFile(`${site}/${rel}`, { container: p.container });
      got = f ? sha(f.data) : null;
    } catch (e) {
      if (!isDeploylabError(e) || e.fault !== 'candidate') throw e;
    }
    files.push({ file: rel, sha256: got });
    as.push({ id: `file:${rel}`, ok: got === digest, expected: `sha256 ${digest.slice(0, 12)}… (version ${v.package.version})`, actual: got ? `sha256 ${got.slice(0, 12)}…` : 'absent' });
  }
  return judge(as, 'all', { zh: `虚拟环境 ${v.path}`, en: `virtual environment ${v.path}` }, [note('虚拟环境的配置、解释器与已安装文件', "the venv's config, interpreter and installed files", { pyvenvCfg: cfgText, interpreter: py, distInfo: dists, files })]);
}

async function isolation(ctx: SysenvContext, p: SysenvParams, i: NonNullable<SysenvParams['isolation']>): Promise<ProbeOutcome> {
  const u = await users(ctx.seat, p.container);
  const dirs = [...i.systemPaths];
  if (i.userSites) for (const e of u.passwd) dirs.push(normalize(`${e.home}/.local/lib/python${i.pythonVersion}/site-packages`));
  const seen = new Set<string>();
  const found: string[] = [];
  const execLines: { pth: string; line: string }[] = [];
  const queue = dirs.map((d) => ({ dir: d, via: '' }));
  while (queue.length > 0) {
    const { dir, via } = queue.shift()!;
    if (seen.has(dir) || seen.size > 200) continue;
    seen.add(dir);
    const names = await ctx.fs.list(dir);
    if (!names) continue;
    for (const n of names) {
      if (importableAs(n, i.package)) found.push(`${dir}/${n}${via}`);
      if (n.endsWith('.pth')) {
        const body = await ctx.fs.read(`${dir}/${n}`, 64 * 1024);
        if (!body) continue;
        const pth = pthEntries(body.toString('utf8'), dir);
        for (const d of pth.dirs) queue.push({ dir: d, via: ` (via ${dir}/${n})` });
        for (const line of pth.imports) execLines.push({ pth: `${dir}/${n}`, line: show(line, 200) });
      }
    }
    ctx.deadline.check();
  }
  const as: Assertion[] = [{ id: 'not-importable', ok: found.length === 0, expected: `no ${i.package} on the system interpreter's paths or any user's site`, actual: found.join('; ') || 'none' }];
  return judge(as, 'all', { zh: `系统解释器不能导入 ${i.package}`, en: `the system interpreter cannot import ${i.package}` }, [note('查看的目录', 'directories looked at', { dirs: [...seen], pthImportLines: execLines.slice(0, 20) })]);
}

// ---------------------------------------------------------------------------------------------
// The service

async function procRead(pid: number, what: string): Promise<Buffer | null> {
  try {
    return await readFile(`${PROC}/${pid}/${what}`);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return null;
    throw new DeploylabError({ code: code === 'EACCES' || code === 'EPERM' ? 'PROBE_HOST_PROC_DENIED' : 'PROBE_HOST_PROC_FAILED', fault: 'infrastructure', message: { zh: `读取主机上进程 ${pid} 的 ${what} 失败`, en: `reading ${what} of host process ${pid} failed` }, cause: e });
  }
}

/** The interpreter path python takes from argv[0] (as a path, or through PATH), as the seat names it. */
async function programPath(fs: SeatFs, argv0: string, cwd: string, env: Map<string, string>): Promise<string | null> {
  if (argv0.includes('/')) return normalize(argv0.startsWith('/') ? argv0 : `${cwd}/${argv0}`);
  for (const dir of (env.get('PATH') ?? '').split(':')) {
    if (!dir.startsWith('/')) continue;
    const st = await fs.lstat(`${dir}/${argv0}`);
    if (st && (st.type === 'file' || st.type === 'symlink')) {
      const real = await fs.resolve(`${dir}/${argv0}`);
      const rst = real ? await fs.lstat(real) : null;
      if (rst?.type === 'file' && (rst.mode & 0o111) !== 0) return normalize(`${dir}/${argv0}`);
    }
  }
  return null;
}

async function service(ctx: SysenvContext, p: SysenvParams, s: NonNullable<SysenvParams['service']>): Promise<ProbeOutcome> {
  const { seat, fs } = ctx;
  const re = new RegExp(s.commandMatches);
  const found = ctx.processes.filter((x) => x.role === p.container && re.test(x.command));
  const as: Assertion[] = [{ id: 'count', ok: found.length >= 1, expected: '≥ 1', actual: String(found.length) }];
  const u = await users(seat, p.container);
  const user = userNamed(u, s.user);
  const want = await capability(seat, 'image-files')(s.executable, { container: p.container });
  if (!want) {
    throw new DeploylabError({ code: 'PROBE_IMAGE_FILE_MISSING', fault: 'config', message: { zh: `考位镜像中没有 ${s.executable}`, en: `the seat's image has no ${s.executable}` }, details: { path: s.executable } });
  }
  const seen: Record<string, unknown>[] = [];
  for (const x of found) {
    const pid = x.hostPid;
    const raw = await procRead(pid, 'cmdline');
    const argv = raw ? raw.toString('utf8').split('\0').filter((a, i, all) => a !== '' || i < all.length - 1) : [];
    const tag = `pid ${pid}`;
    if (!raw || !sameCommand(x.command, cmdlineText(raw.toString('utf8')))) {
      as.push({ id: `${tag}:running`, ok: false, expected: 'the listed process', actual: 'exited during the check' });
      continue;
    }
    const exe = await executableOf(pid);
    as.push({ id: `${tag}:executable`, ok: exe?.sha256 === want.sha256, expected: `the image's ${want.path} (sha256 ${want.sha256.slice(0, 12)}…)`, actual: exe ? `${exe.path} (sha256 ${exe.sha256.slice(0, 12)}…)` : 'exited' });
    const env = parseEnviron((await procRead(pid, 'environ')) ?? '');
    let cwd = '/';
    try {
      cwd = await readlink(`${PROC}/${pid}/cwd`);
    } catch {
      // Gone meanwhile: the other readings say so.
    }
    const prog = argv[0] ? await programPath(fs, argv[0], cwd, env) : null;
    const venvOf = prog ? normalize(`${prog}/../..`) : null;
    as.push({ id: `${tag}:venv`, ok: venvOf === normalize(s.venv), expected: `the interpreter started as ${s.venv}/bin/<python>`, actual: prog ?? `argv[0] ${show(argv[0] ?? '', 80)} not found` });
    const mod = moduleOf(argv);
    as.push({ id: `${tag}:module`, ok: mod === s.module, expected: `-m ${s.module}`, actual: mod === null ? 'a script, -c code or no module' : `-m ${mod}` });
    const status = ((await procRead(pid, 'status')) ?? '').toString('utf8');
    const uids = /^Uid:\s+(\d+)\s+(\d+)/m.exec(status);
    const ok = !!user && !!uids && Number(uids[1]) === user.uid && Number(uids[2]) === user.uid;
    as.push({ id: `${tag}:user`, ok, expected: user ? `${s.user} (uid ${user.uid})` : `${s.user} (no such user)`, actual: uids ? `uid ${uids[1]} (effective ${uids[2]})` : '?' });
    const held: string[] = [];
    let holds = false;
    let otherContent: string | null = null;
    let fds: string[] = [];
    try {
      fds = await readdir(`${PROC}/${pid}/fd`);
    } catch {
      // Gone meanwhile.
    }
    for (const fd of fds.slice(0, 4096)) {
      let link: string;
      try {
        link = await readlink(`${PROC}/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (!link.startsWith('/')) continue;
      if (held.length < 30) held.push(link);
      if (link !== s.holds.path) continue;
      const digest = await sha256Of(`${PROC}/${pid}/fd/${fd}`);
      if (digest === s.holds.sha256) holds = true;
      else otherContent = digest;
    }
    as.push({
      id: `${tag}:holds`,
      ok: holds,
      expected: `${s.holds.path} open, sha256 ${s.holds.sha256.slice(0, 12)}…`,
      actual: holds ? 'open' : otherContent ? `open, but its content is sha256 ${otherContent.slice(0, 12)}…` : `not open (open files: ${held.join(', ') || 'none'})`,
    });
    for (const [k, v] of Object.entries(s.vars ?? {})) {
      const got = env.get(k);
      as.push({ id: `${tag}:env:${k}`, ok: got === v, expected: v, actual: got ?? '(unset)' });
    }
    seen.push({ hostPid: pid, argv: argv.slice(0, 20).map((a) => show(a, 200)), exe, program: prog, uid: uids?.[1], env: Object.fromEntries([...Object.keys(s.vars ?? {})].map((k) => [k, env.get(k) ?? null])) });
    ctx.deadline.check();
  }
  return judge(as, 'all', { zh: '服务进程', en: 'service process' }, [note('匹配的进程（主机 /proc 读数）', 'matching processes, read from the host /proc', { commandMatches: s.commandMatches, processes: seen })]);
}

// ---------------------------------------------------------------------------------------------

/** The probe on given readings (tests give a temporary directory as the seat's file system). */
export async function judgeSysenv(ctx: SysenvContext, p: SysenvParams): Promise<ProbeOutcome> {
  if (p.account) return account(ctx, p, p.account);
  if (p.paths) return paths(ctx, p, p.paths);
  if (p.loginEnv) return loginEnv(ctx, p, p.loginEnv);
  if (p.venv) return venv(ctx, p, p.venv);
  if (p.isolation) return isolation(ctx, p, p.isolation);
  return service(ctx, p, p.service!);
}

export const sysenvProbe = defineProbe({
  kind: 'sysenv',
  params: SysenvParamsSchema,
  async run(seat, p, deadline) {
    const processes = await seat.listProcesses();
    const fs = seatFsAt(await containerRoot(processes, p.container));
    return judgeSysenv({ seat, fs, processes, deadline }, p);
  },
});
