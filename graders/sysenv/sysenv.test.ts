import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { tempSeat, type TempSeat } from '../__helpers__/temp-seat.js';
import { Deadline, type ProbeOutcome } from '../probe.js';
import { SysenvParamsSchema } from './params.js';
import { importableAs, moduleOf, parseEnviron, parseGroup, parsePasswd, parsePyvenvCfg, pthEntries } from './parse.js';
import { seatFsAt } from './seat-fs.js';
import { judgeSysenv, loginScript, parseLoginOutput, printCommand } from './sysenv.js';

const sha = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');
const failedIds = (o: ProbeOutcome): string[] => {
  const n = o.evidence.find((e) => e.kind === 'note' && (e.data as { assertions?: unknown } | undefined)?.assertions);
  const list = n?.kind === 'note' ? (n.data as { assertions: { id: string; ok: boolean }[] }).assertions : [];
  return list.filter((a) => !a.ok).map((a) => a.id);
};

describe('parsers', () => {
  it('reads passwd and group lines as glibc does, skipping malformed ones', () => {
    const p = parsePasswd('root:x:0:0:root:/root:/bin/bash\nbroken line\nmodelsvc:x:999:999::/srv/modelsvc:/usr/sbin/nologin\nbad:x:uid:1::/:/bin/sh\n');
    expect(p.map((e) => [e.name, e.uid, e.gid, e.home, e.shell, e.line])).toEqual([
      ['root', 0, 0, '/root', '/bin/bash', 1],
      ['modelsvc', 999, 999, '/srv/modelsvc', '/usr/sbin/nologin', 3],
    ]);
    expect(parseGroup('modelsvc:x:999:candidate, other\nempty:x:5:\n').map((g) => [g.name, g.gid, g.members])).toEqual([
      ['modelsvc', 999, ['candidate', 'other']],
      ['empty', 5, []],
    ]);
  });

  it('reads pyvenv.cfg, .pth files and a NUL-separated environment', () => {
    const cfg = parsePyvenvCfg('home = /usr/bin\nInclude-System-Site-Packages = False\nversion = 3.11.2\nno equals sign\n');
    expect(cfg.get('include-system-site-packages')).toBe('False');
    expect(cfg.get('version')).toBe('3.11.2');
    expect(pthEntries('# c\n\nimport os; os.x = 1\n../elsewhere\n/abs/dir  \n', '/usr/lib/python3/dist-packages')).toEqual({
      dirs: ['/usr/lib/python3/elsewhere', '/abs/dir'],
      imports: ['import os; os.x = 1'],
    });
    const env = parseEnviron(Buffer.from('A=1\0B=x=y\0A=2\0junk\0'));
    expect([...env]).toEqual([['A', '1'], ['B', 'x=y']]);
  });

  it('knows what makes a name importable and which module python -m runs', () => {
    expect(['labworker', 'labworker.py', 'labworker.cpython-311-x86_64-linux-gnu.so', 'labworker-1.4.0.dist-info', 'labworkers', 'labworker.txt'].map((n) => importableAs(n, 'labworker'))).toEqual([true, true, true, false, false, false]);
    expect(moduleOf(['python', '-m', 'labworker'])).toBe('labworker');
    expect(moduleOf(['python', '-u', '-X', 'dev', '-mlabworker'])).toBe('labworker');
    expect(moduleOf(['python', '/tmp/labworker.py', '-m', 'labworker'])).toBeNull();
    expect(moduleOf(['python', '-c', 'import labworker'])).toBeNull();
  });

  it('reads login-shell reports by block, the last report of a block winning, unset apart from empty', () => {
    const b = (s: string): string => Buffer.from(s).toString('base64');
    const out = ['##n1 root login', `@@ MODEL_DIR ${b('/fake')}`, `@@ MODEL_DIR ${b('/srv/m')}`, '@@ HF_HOME -', '##n1 root interactive', '@@ MODEL_DIR ', '##n1 end', '@@ MODEL_DIR x'].join('\n');
    const got = parseLoginOutput(out, 'n1');
    expect(got.get('root')?.get('login')?.get('MODEL_DIR')).toBe('/srv/m');
    expect(got.get('root')?.get('login')?.get('HF_HOME')).toBeNull();
    expect(got.get('root')?.get('interactive')?.get('MODEL_DIR')).toBe('');
    // A profile script printing a header of its own cannot know the nonce.
    expect(parseLoginOutput('##other root login\n@@ A Zm9v\n', 'n1').size).toBe(0);
  });

  it('the login script reads each user through bash --login, interactive and not, and prints every variable', async () => {
    const script = loginScript(['root', 'nobody'], ['MODEL_DIR'], 'abc');
    expect(script).toContain("echo '##abc root login'");
    expect(script).toContain("echo '##abc nobody interactive'");
    expect(script.match(/bash --login -c/g)).toHaveLength(2);
    expect(script.match(/bash --login -i -c/g)).toHaveLength(2);
    // The print command itself, run by a real bash, reports set, empty and unset apart.
    const print = printCommand(['MODEL_DIR']);
    const run = (env: Record<string, string>): string => execFileSync('bash', ['--norc', '--noprofile', '-c', print], { env }).toString();
    expect(run({ MODEL_DIR: '/srv/m' })).toBe(`@@ MODEL_DIR ${Buffer.from('/srv/m').toString('base64')}\n`);
    expect(run({ MODEL_DIR: '' })).toBe('@@ MODEL_DIR \n');
    expect(run({})).toBe('@@ MODEL_DIR -\n');
  });

  it('the schema wants exactly one aspect', () => {
    expect(SysenvParamsSchema.safeParse({ kind: 'sysenv' }).success).toBe(false);
    expect(SysenvParamsSchema.safeParse({ kind: 'sysenv', paths: [{ path: '/a', owner: 'a', group: 'a', mode: '0750' }], isolation: { package: 'x', pythonVersion: '3.11', systemPaths: ['/x'] } }).success).toBe(false);
  });
});

describe('seat file system through a host path', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'sysenv-fs-'));
  });
  afterEach(async () => rm(root, { recursive: true, force: true }));

  it("follows absolute links inside the seat's root, never the host's", async () => {
    await mkdir(join(root, 'etc'), { recursive: true });
    await writeFile(join(root, 'etc/passwd'), 'seat\n');
    await mkdir(join(root, 'opt/v/bin'), { recursive: true });
    await symlink('/etc/passwd', join(root, 'opt/v/bin/link'));
    await symlink('../../../etc', join(root, 'opt/v/bin/up'));
    const fs = seatFsAt(root);
    expect(await fs.resolve('/opt/v/bin/link')).toBe('/etc/passwd');
    expect((await fs.read('/opt/v/bin/link', 100))?.toString()).toBe('seat\n');
    expect((await fs.read('/opt/v/bin/up/passwd', 100))?.toString()).toBe('seat\n');
    expect((await fs.lstat('/opt/v/bin/link'))?.type).toBe('symlink');
    expect(await fs.list('/opt/v/bin')).toEqual(['link', 'up']);
    expect(await fs.lstat('/nope')).toBeNull();
  });

  it('a FIFO where a file should be is no file (null at once, the grader is not stuck on it)', async () => {
    await mkdir(join(root, 'etc'), { recursive: true });
    execFileSync('mkfifo', [join(root, 'etc/passwd')]);
    const fs = seatFsAt(root);
    expect(await fs.read('/etc/passwd', 100)).toBeNull();
    expect(await fs.sha256('/etc/passwd')).toBeNull();
    await writeFile(join(root, 'etc/group'), 'g:x:1:\n');
    expect(await fs.sha256('/etc/group')).toBe(createHash('sha256').update('g:x:1:\n').digest('hex'));
    expect((await fs.read('/etc/group', 3))?.toString()).toBe('g:x');
  });

  it('gives up on link loops', async () => {
    await symlink('/b', join(root, 'a'));
    await symlink('/a', join(root, 'b'));
    expect(await seatFsAt(root).resolve('/a')).toBeNull();
  });
});

describe('sysenv probe on a seat in a temporary folder', () => {
  let seat: TempSeat;
  const uid = process.getuid!();
  const gid = process.getgid!();
  const put = async (path: string, content: string | Buffer, mode = 0o644): Promise<void> => {
    const host = join(seat.root, path);
    await mkdir(join(host, '..'), { recursive: true });
    await writeFile(host, content);
    await chmod(host, mode);
  };
  const dir = async (path: string, mode: number): Promise<void> => {
    await mkdir(join(seat.root, path), { recursive: true });
    await chmod(join(seat.root, path), mode);
  };
  const run = (params: Record<string, unknown>): Promise<ProbeOutcome> =>
    judgeSysenv({ seat, fs: seatFsAt(seat.root), processes: seat.processes, deadline: Deadline.after(20_000) }, SysenvParamsSchema.parse({ kind: 'sysenv', ...params }));
  // The account is the test's own uid/gid, so the folders' real owners can be checked.
  const account = { user: 'modelsvc', uid: { min: 0, max: 65535 }, group: 'modelsvc', gid: { min: 0, max: 65535 }, home: '/srv/modelsvc', shell: '/usr/sbin/nologin', members: ['candidate'], homeMode: '0750' };
  const users = async (svc = `modelsvc:x:${uid}:${gid}::/srv/modelsvc:/usr/sbin/nologin`, shadow = true): Promise<void> => {
    await put('/etc/passwd', `candidate:x:1000:1000::/home/candidate:/bin/bash\n${svc}\n`);
    await put('/etc/group', `candidate:x:1000:\nmodelsvc:x:${gid}:candidate\n`);
    await put('/etc/shadow', `candidate:*:19000:0:99999:7:::\n${shadow ? 'modelsvc:!:19000::::::\n' : ''}`, 0o640);
    await put('/etc/gshadow', 'modelsvc:!::candidate\n', 0o640);
  };

  beforeEach(async () => {
    seat = await tempSeat();
  });
  afterEach(async () => seat.cleanup());

  it('passes an account made as the tools make it', async () => {
    await users();
    await dir('/srv/modelsvc', 0o750);
    const o = await run({ account });
    expect(o.status, JSON.stringify(o)).toBe('pass');
  });

  it('fails hand-appended lines without shadow entries, a uid out of range, a shared uid', async () => {
    await users(undefined, false);
    await dir('/srv/modelsvc', 0o750);
    expect(failedIds(await run({ account }))).toEqual(['shadow']);
    expect(failedIds(await run({ account: { ...account, uid: { min: 100, max: 999 } } }))).toContain('uid');
    await put('/etc/passwd', `candidate:x:1000:1000::/home/candidate:/bin/bash\nmodelsvc:x:1000:${gid}::/srv/modelsvc:/usr/sbin/nologin\n`);
    expect(failedIds(await run({ account }))).toContain('uid');
  });

  it('fails a home that is a symlink, and folders with other modes', async () => {
    await users();
    await dir('/data/real', 0o750);
    await mkdir(join(seat.root, 'srv'), { recursive: true });
    await symlink('/data/real', join(seat.root, 'srv/modelsvc'));
    expect(failedIds(await run({ account }))).toEqual(['home-dir']);
    await dir('/srv2/models', 0o777);
    const o = await run({ paths: [{ path: '/srv2/models', owner: 'modelsvc', group: 'modelsvc', mode: '2770' }, { path: '/data/real', owner: 'modelsvc', group: 'modelsvc', mode: '0750' }] });
    expect(failedIds(o)).toEqual(['/srv2/models']);
  });

  describe('venv and isolation', () => {
    const site = '/opt/venvs/lw/lib/python3.11/site-packages';
    const INIT = '__version__ = "1.4.0"\n';
    const venvParams = { path: '/opt/venvs/lw', pythonVersion: '3.11', basePython: '/usr/bin/python3', package: { name: 'labworker', version: '1.4.0', files: { 'labworker/__init__.py': sha(INIT), 'labworker-1.4.0.dist-info/METADATA': sha('Version: 1.4.0\n') } } };
    beforeEach(async () => {
      await put('/usr/bin/python3.11', 'ELF python');
      await symlink('python3.11', join(seat.root, 'usr/bin/python3'));
      (seat as TempSeat & { imageFile: unknown }).imageFile = async () => ({ path: '/usr/bin/python3.11', size: 10, sha256: sha('ELF python') });
      await put('/opt/venvs/lw/pyvenv.cfg', 'home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n');
      await mkdir(join(seat.root, 'opt/venvs/lw/bin'), { recursive: true });
      await symlink('/usr/bin/python3', join(seat.root, 'opt/venvs/lw/bin/python'));
      await put(`${site}/labworker/__init__.py`, INIT);
      await put(`${site}/labworker-1.4.0.dist-info/METADATA`, 'Version: 1.4.0\n');
    });

    it('passes the right version in a venv of the image python', async () => {
      const o = await run({ venv: venvParams });
      expect(o.status, JSON.stringify(o)).toBe('pass');
    });

    it('fails a relabelled other version, a system-site venv and a foreign interpreter', async () => {
      await put(`${site}/labworker/__init__.py`, '__version__ = "1.4.0"  # really 2.0.0\n');
      await put('/opt/venvs/lw/pyvenv.cfg', 'home = /usr/bin\ninclude-system-site-packages = true\nversion = 3.11.2\n');
      await rm(join(seat.root, 'opt/venvs/lw/bin/python'));
      await put('/opt/venvs/lw/bin/python', '#!/bin/sh\n', 0o755);
      await mkdir(join(seat.root, `${site}/labworker-2.0.0.dist-info`));
      expect(failedIds(await run({ venv: venvParams })).sort()).toEqual(['dist-info', 'file:labworker/__init__.py', 'interpreter', 'no-system-site']);
    });

    it('finds the package in a user site and behind a .pth file, not in the venv', async () => {
      const iso = { package: 'labworker', pythonVersion: '3.11', systemPaths: ['/usr/lib/python3/dist-packages', '/usr/local/lib/python3.11/dist-packages'] };
      await put('/etc/passwd', 'candidate:x:1000:1000::/home/candidate:/bin/bash\n');
      await put('/usr/lib/python3/dist-packages/other.py', '');
      expect((await run({ isolation: iso })).status).toBe('pass');
      await put('/home/candidate/.local/lib/python3.11/site-packages/labworker/__init__.py', INIT);
      await put('/usr/local/lib/python3.11/dist-packages/lw.pth', `import sys\n${site}\n`);
      const o = await run({ isolation: iso });
      const found = JSON.stringify(o.evidence);
      expect(o.status).toBe('fail');
      expect(found).toContain('/home/candidate/.local/lib/python3.11/site-packages/labworker');
      expect(found).toContain(`${site}/labworker (via /usr/local/lib/python3.11/dist-packages/lw.pth)`);
    });
  });
});

describe('sysenv probe on a real service process', () => {
  // A real venv of this machine's python3, a real `python -m labworker` from it; the host's
  // own "/" stands for the seat's root.
  let base: string;
  let child: ChildProcess | undefined;
  let venvDir: string;
  const BUILD = 'labworker 1.4.0 (test)\n';
  let seat: TempSeat;
  beforeAll(async () => {
    base = await realpath(await mkdtemp(join(tmpdir(), 'sysenv-svc-')));
    venvDir = join(base, 'venv');
    execFileSync('python3', ['-m', 'venv', '--without-pip', venvDir]);
    const ver = execFileSync(join(venvDir, 'bin/python'), ['-c', 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")']).toString().trim();
    const pkg = join(venvDir, `lib/python${ver}/site-packages/labworker`);
    await mkdir(pkg, { recursive: true });
    await writeFile(join(pkg, '__init__.py'), '');
    await writeFile(join(pkg, 'BUILD'), BUILD);
    await writeFile(join(pkg, '__main__.py'), 'import os, time\nf = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "BUILD"), "rb")\nprint("up", flush=True)\ntime.sleep(60)\n');
    child = spawn(join(venvDir, 'bin/python'), ['-m', 'labworker'], { env: { PATH: '/usr/bin:/bin', MODEL_DIR: '/srv/m' }, stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise<void>((resolve) => child!.stdout!.once('data', () => resolve()));
  }, 30_000);
  afterAll(async () => {
    child?.kill('SIGKILL');
    await rm(base, { recursive: true, force: true });
  });
  beforeEach(async () => {
    seat = await tempSeat();
    await writeFile(join(seat.root, 'passwd'), '');
    await mkdir(join(seat.root, 'etc'), { recursive: true });
    await writeFile(join(seat.root, 'etc/passwd'), `svc:x:${process.getuid!()}:0::/:/bin/sh\nother:x:4242:0::/:/bin/sh\n`);
    const exe = await readFile(`/proc/${child!.pid}/exe`);
    (seat as TempSeat & { imageFile: unknown }).imageFile = async () => ({ path: '/usr/bin/python3', size: exe.length, sha256: sha(exe) });
    const cmd = (await readFile(`/proc/${child!.pid}/cmdline`, 'utf8')).split('\0').filter(Boolean).join(' ');
    seat.processes = [{ hostPid: child!.pid!, ppid: process.pid, user: 'svc', command: cmd, role: 'workspace' }];
  });
  afterEach(async () => seat.cleanup());

  const params = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
    commandMatches: 'labworker',
    venv: venvDir,
    module: 'labworker',
    user: 'svc',
    holds: { path: '', sha256: sha(BUILD) },
    ...over,
  });
  const run = async (over: Record<string, unknown> = {}): Promise<ProbeOutcome> => {
    const p = params(over);
    const ver = execFileSync(join(venvDir, 'bin/python'), ['-c', 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")']).toString().trim();
    if ((p.holds as { path: string }).path === '') p.holds = { path: join(venvDir, `lib/python${ver}/site-packages/labworker/BUILD`), sha256: sha(BUILD) };
    return judgeSysenv({ seat, fs: seatFsAt(''), processes: seat.processes, deadline: Deadline.after(20_000) }, SysenvParamsSchema.parse({ kind: 'sysenv', service: p }));
  };

  it('passes the venv interpreter running the module as its user, with its environment', async () => {
    const o = await run({ vars: { MODEL_DIR: '/srv/m' } });
    expect(o.status, JSON.stringify(o)).toBe('pass');
  });

  it('fails another user, another venv, a variable it lacks, a file it does not hold, another interpreter', async () => {
    const ids = (o: ProbeOutcome): string[] => failedIds(o).map((id) => id.replace(/^pid \d+:/, ''));
    expect(ids(await run({ user: 'other' }))).toEqual(['user']);
    expect(ids(await run({ venv: '/opt/venvs/elsewhere' }))).toEqual(['venv']);
    expect(ids(await run({ vars: { HF_HOME: '/x', MODEL_DIR: '/srv/m' } }))).toEqual(['env:HF_HOME']);
    expect(ids(await run({ holds: { path: '/etc/hostname', sha256: sha(BUILD) } }))).toEqual(['holds']);
    (seat as TempSeat & { imageFile: unknown }).imageFile = async () => ({ path: '/usr/bin/python3', size: 1, sha256: sha('not python') });
    expect(ids(await run())).toEqual(['executable']);
  });

  it('fails when no process matches', async () => {
    seat.processes = [];
    expect(failedIds(await run())).toEqual(['count']);
  });
});
