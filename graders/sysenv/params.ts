import { z } from 'zod';
import { AbsolutePath, ContainerRole, FileMode, Regex, Timeout } from '../params.js';

/** A user or group name as shadow-utils accepts it. */
const Name = z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'a user or group name');
const IdRange = z.strictObject({ min: z.number().int().min(0), max: z.number().int().min(0) }).refine((r) => r.min <= r.max, { message: 'min ≤ max' });
const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, '64 lowercase hex digits');
const VarName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name');
const PythonVersion = z.string().regex(/^3\.\d+$/, 'major.minor, e.g. "3.11"');
/** The package's files as installed, relative to site-packages, with their content digests. */
const PackageFiles = z.record(z.string().regex(/^[^/\0][^\0]*$/, 'a path relative to site-packages'), Sha256).refine((r) => Object.keys(r).length > 0, { message: 'at least one file' });

/** A system account as the seat's /etc/passwd, /etc/group and /etc/shadow have it. */
const AccountSchema = z.strictObject({
  user: Name,
  uid: IdRange,
  /** The user's primary group, by name; the group's gid must be in `gid`. */
  group: Name,
  gid: IdRange,
  home: AbsolutePath,
  shell: AbsolutePath,
  /** Users that must be supplementary members of `group` (the group line's member list). */
  members: z.array(Name).default([]),
  /** The home directory: a real directory, owned by the user and its group, with this mode. */
  homeMode: FileMode.optional(),
});

const PathSchema = z.strictObject({
  path: AbsolutePath,
  type: z.enum(['directory', 'file']).default('directory'),
  /** Names from the seat's own /etc/passwd and /etc/group. */
  owner: Name,
  group: Name,
  mode: FileMode,
});

/** Every login shell of these users (bash --login, interactive and not) sees these values. */
const LoginEnvSchema = z.strictObject({
  users: z.array(Name).min(1),
  vars: z.record(VarName, z.string()).refine((r) => Object.keys(r).length > 0, { message: 'at least one variable' }),
});

const VenvSchema = z.strictObject({
  path: AbsolutePath,
  pythonVersion: PythonVersion,
  /** The image's interpreter the venv's bin/python must resolve to (content compared). */
  basePython: AbsolutePath.default('/usr/bin/python3'),
  package: z.strictObject({ name: Name, version: z.string().min(1), files: PackageFiles }),
});

/** The system interpreter cannot import `package`: nothing importable in its paths or any user's site. */
const IsolationSchema = z.strictObject({
  package: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an importable top-level name'),
  pythonVersion: PythonVersion,
  /** Directories on the system interpreter's path (site dirs, the image's PYTHONPATH). */
  systemPaths: z.array(AbsolutePath).min(1),
  /** Also every passwd user's ~/.local/lib/pythonX.Y/site-packages. */
  userSites: z.boolean().default(true),
});

/** A service: the image's python from the venv, running a module as a user, with its environment. */
const ServiceSchema = z.strictObject({
  commandMatches: Regex,
  venv: AbsolutePath,
  module: z.string().regex(/^[A-Za-z_][A-Za-z0-9_.]*$/),
  /** The image's interpreter the process must be (content of /proc/<pid>/exe). */
  executable: AbsolutePath.default('/usr/bin/python3'),
  user: Name,
  /** A file of the venv the process holds open (exact path) with this content. */
  holds: z.strictObject({ path: AbsolutePath, sha256: Sha256 }),
  /** Values the process's own environment (/proc/<pid>/environ) must carry. */
  vars: z.record(VarName, z.string()).optional(),
});

export const SysenvParamsSchema = z
  .strictObject({
    kind: z.literal('sysenv'),
    container: ContainerRole.default('workspace'),
    account: AccountSchema.optional(),
    paths: z.array(PathSchema).min(1).optional(),
    loginEnv: LoginEnvSchema.optional(),
    venv: VenvSchema.optional(),
    isolation: IsolationSchema.optional(),
    service: ServiceSchema.optional(),
    timeoutMs: Timeout.default(30_000),
  })
  .refine((p) => [p.account, p.paths, p.loginEnv, p.venv, p.isolation, p.service].filter((x) => x !== undefined).length === 1, {
    message: 'give exactly one of account, paths, loginEnv, venv, isolation, service',
  });

export type SysenvParams = z.output<typeof SysenvParamsSchema>;
