/**
 * The seat's own system files as the tools that use them read them: the user and group
 * databases, a venv's pyvenv.cfg, site-packages .pth files, a NUL-separated environment.
 */

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
  line: number;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
  line: number;
}

/** Lines of name:passwd:uid:gid:gecos:home:shell; malformed lines are skipped as glibc does. */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const f = raw.split(':');
    if (f.length !== 7 || !f[0] || !/^\d+$/.test(f[2]!) || !/^\d+$/.test(f[3]!)) return;
    out.push({ name: f[0], uid: Number(f[2]), gid: Number(f[3]), home: f[5]!, shell: f[6]!, line: i + 1 });
  });
  return out;
}

/** Lines of name:passwd:gid:member,member. */
export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const f = raw.split(':');
    if (f.length !== 4 || !f[0] || !/^\d+$/.test(f[2]!)) return;
    out.push({ name: f[0], gid: Number(f[2]), members: f[3]!.split(',').map((m) => m.trim()).filter(Boolean), line: i + 1 });
  });
  return out;
}

/** Names with an entry in /etc/shadow or /etc/gshadow (first field of well-formed lines). */
export function shadowNames(text: string, fields: number): Set<string> {
  const out = new Set<string>();
  for (const raw of text.split('\n')) {
    const f = raw.split(':');
    if (f.length === fields && f[0]) out.add(f[0]);
  }
  return out;
}

/**
 * pyvenv.cfg as CPython's site.py reads it: `key = value` lines, keys lower-cased and stripped,
 * lines without `=` ignored.
 */
export function parsePyvenvCfg(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const eq = raw.indexOf('=');
    if (eq < 0) continue;
    out.set(raw.slice(0, eq).trim().toLowerCase(), raw.slice(eq + 1).trim());
  }
  return out;
}

/**
 * The directories a .pth file adds, as site.addpackage reads it: blank lines and `#` comments
 * skipped, lines starting with `import` executed (reported apart), others are paths relative to
 * the site directory.
 */
export function pthEntries(text: string, siteDir: string): { dirs: string[]; imports: string[] } {
  const dirs: string[] = [];
  const imports: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    if (raw.startsWith('#') || raw.trim() === '') continue;
    if (/^import[ \t]/.test(raw)) {
      imports.push(raw);
      continue;
    }
    const line = raw.replace(/\s+$/, '');
    dirs.push(line.startsWith('/') ? normalize(line) : normalize(`${siteDir}/${line}`));
  }
  return { dirs, imports };
}

/** `/a/./b/../c` → `/a/c`, without touching any file system. */
export function normalize(path: string): string {
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return `/${out.join('/')}`;
}

/** /proc/<pid>/environ: NUL-separated NAME=value; the first of a repeated name is what getenv returns. */
export function parseEnviron(raw: Buffer | string): Map<string, string> {
  const out = new Map<string, string>();
  for (const item of raw.toString('utf8').split('\0')) {
    const eq = item.indexOf('=');
    if (eq <= 0) continue;
    const k = item.slice(0, eq);
    if (!out.has(k)) out.set(k, item.slice(eq + 1));
  }
  return out;
}

/**
 * Whether a directory entry makes `pkg` importable when the directory is on sys.path: a package
 * or namespace directory, a module, byte code, or an extension module.
 */
export function importableAs(entry: string, pkg: string): boolean {
  if (entry === pkg) return true;
  if (!entry.startsWith(`${pkg}.`)) return false;
  const rest = entry.slice(pkg.length + 1);
  return rest === 'py' || rest === 'pyc' || rest === 'pyw' || rest.endsWith('.so') || rest === 'so';
}

/**
 * Where python would take `-m <module>` from in an argv: the module after the interpreter's
 * options, or null when it runs a script, `-c` code or stdin instead.
 */
export function moduleOf(argv: readonly string[]): string | null {
  // Options of CPython's command line that take a value as the next argument.
  const withValue = new Set(['-W', '-X', '--check-hash-based-pycs']);
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-m') return argv[i + 1] ?? null;
    if (a.startsWith('-m') && a.length > 2 && !a.startsWith('--')) return a.slice(2);
    if (a === '-c' || (a.startsWith('-c') && !a.startsWith('--'))) return null;
    if (a === '-' || a === '--' || !a.startsWith('-')) return null;
    if (withValue.has(a)) i++;
  }
  return null;
}
