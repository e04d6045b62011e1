import { z } from 'zod';
import { BilingualSchema, LevelSchema } from './catalogue.js';
import { ProbeParamsSchema } from '../../graders/kinds.js';
import { AbsolutePath, ContainerRole, FileMode, ProcessMatchSchema } from '../../graders/params.js';

/**
 * tasks/<level>/<task-id>/task.yaml. Strict everywhere: an unknown key is an error. Cross-checks
 * that need more than one file (skill codes against the catalogue, dependsOn, files on disk) are
 * in loader.ts and reported the same way.
 */
export const TaskId = z.string().regex(/^[a-z0-9][a-z0-9-]{1,47}$/, 'lowercase letters, digits and -, 2-48 characters');
export const CheckId = z.string().regex(/^[a-z0-9][a-z0-9-]{0,47}$/, 'lowercase letters, digits and -');
/** A path relative to the task folder's setup/ or solution/ folder, never leaving it. */
const RelativePath = z
  .string()
  .regex(/^(?!\/)(?!.*(^|\/)\.\.(\/|$))[^\0]+$/, 'a relative path that stays inside the folder');

/** What each of a task's GPUs must be: the host's GPUs are matched against it before a seat is made. */
export const GpuNeedsSchema = z.strictObject({
  /** Memory per GPU (or per MIG instance); 0: any. */
  minMemoryMiB: z.number().int().min(0).max(1_048_576).default(0),
  /** whole: full GPUs (MIG disabled); mig: MIG instances; any: either. */
  partition: z.enum(['whole', 'mig', 'any']).default('whole'),
});
export type GpuNeeds = z.output<typeof GpuNeedsSchema>;
/** What `needs.gpu` means when a GPU task leaves it out. */
export const GPU_NEEDS_DEFAULT: GpuNeeds = GpuNeedsSchema.parse({});

export const NeedsSchema = z
  .strictObject({
    profile: z.enum(['workspace-cpu', 'docker-in-seat', 'gpu']),
    cpus: z.number().positive().max(64).default(1),
    memoryMiB: z.number().int().min(256).max(1_048_576).default(2048),
    gpus: z.number().int().min(0).max(8).default(0),
    gpu: GpuNeedsSchema.optional(),
    estimatedMinutes: z.number().int().min(1).max(480),
  })
  .refine((n) => (n.profile === 'gpu') === n.gpus > 0, { message: 'profile gpu needs gpus ≥ 1, other profiles gpus = 0', path: ['gpus'] })
  .refine((n) => n.gpu === undefined || n.gpus >= 1, { message: 'needs.gpu is only allowed when gpus ≥ 1', path: ['gpu'] });
export type Needs = z.output<typeof NeedsSchema>;

const User = z.enum(['root', 'candidate']);

export const SetupFileSchema = z.strictObject({
  /** Under the task's setup/ folder. */
  from: RelativePath,
  to: AbsolutePath,
  container: ContainerRole.default('workspace'),
  mode: FileMode.default('0644'),
  owner: User.default('root'),
});

export const FaultSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('kill-process'), container: ContainerRole.default('workspace'), match: ProcessMatchSchema }),
  z.strictObject({ kind: z.literal('delete-file'), container: ContainerRole.default('workspace'), path: AbsolutePath }),
  z.strictObject({ kind: z.literal('chmod'), container: ContainerRole.default('workspace'), path: AbsolutePath, mode: FileMode }),
  /** Overwrite a file with a broken version kept under setup/. */
  z.strictObject({ kind: z.literal('replace-file'), container: ContainerRole.default('workspace'), from: RelativePath, to: AbsolutePath }),
  z.strictObject({
    kind: z.literal('fill-disk'),
    container: ContainerRole.default('workspace'),
    path: AbsolutePath,
    mib: z.number().int().min(1).max(65_536),
  }),
]);

export const SetupSchema = z.strictObject({
  files: z.array(SetupFileSchema).default([]),
  /** Run once, in order, before the candidate gets the seat. */
  commands: z
    .array(
      z.strictObject({
        run: z.string().min(1),
        user: User.default('root'),
        container: ContainerRole.default('workspace'),
        timeoutSeconds: z.number().int().min(1).max(1800).default(120),
      }),
    )
    .default([]),
  /** Long-running processes the task starts for the candidate (e.g. a broken service to repair). */
  services: z
    .array(
      z.strictObject({
        name: z.string().regex(/^[a-z][a-z0-9-]*$/),
        run: z.string().min(1),
        user: User.default('root'),
        container: ContainerRole.default('workspace'),
      }),
    )
    .default([]),
  /** Applied after files/commands/services: what the candidate must find and fix. */
  faults: z.array(FaultSchema).default([]),
});

export const SolutionSchema = z.strictObject({
  /** Under the task's solution/ folder; run in order inside the seat as the candidate user. */
  scripts: z.array(RelativePath).min(1),
  timeoutSeconds: z.number().int().min(1).max(3600).default(600),
});

/**
 * The task's proof against shortcuts: scripts in tampers/ that take one (each names the checks it
 * must not pass) and scripts in alternatives/ that solve the task another correct way (full marks).
 * Each runs as the candidate on a seat of its own, set up afresh; `tasks verify` runs them all.
 */
export const SelfProofSchema = z.strictObject({
  tampers: z
    .array(
      z.strictObject({
        /** Under the task's tampers/ folder. It must exit 0 once its shortcut is in place. */
        script: RelativePath,
        title: BilingualSchema,
        /** Checks this shortcut must not earn: each ends fail or blocked. */
        mustNotPass: z.array(CheckId).min(1),
      }),
    )
    .default([]),
  alternatives: z
    .array(
      z.strictObject({
        /** Under the task's alternatives/ folder: a correct solution by other means, full marks. */
        script: RelativePath,
        title: BilingualSchema,
      }),
    )
    .default([]),
});

export const CheckSchema = z.strictObject({
  id: CheckId,
  /** Skill item code of the catalogue at the task's level, e.g. "1.2.1". */
  skill: z.string().regex(/^[1-4]\.\d\.\d$/, 'a skill item code such as 1.2.1'),
  title: BilingualSchema,
  points: z.number().positive().max(100),
  probe: ProbeParamsSchema,
  /** Graded only after these checks (of this task) pass; otherwise scored 0 as "blocked". */
  dependsOn: z.array(CheckId).default([]),
});

export const TaskSchema = z.strictObject({
  id: TaskId,
  level: LevelSchema,
  title: BilingualSchema,
  version: z.string().regex(/^\d+\.\d+\.\d+$/, 'semantic version such as 1.0.0'),
  needs: NeedsSchema,
  setup: SetupSchema.prefault({}),
  solution: SolutionSchema,
  selfProof: SelfProofSchema.prefault({}),
  checks: z.array(CheckSchema).min(1),
});

export type Task = z.output<typeof TaskSchema>;
export type TaskInput = z.input<typeof TaskSchema>;
export type Check = Task['checks'][number];

/** tasks/papers/<id>.yaml */
export const PaperSchema = z.strictObject({
  id: TaskId,
  level: LevelSchema,
  title: BilingualSchema,
  /** Minutes of the practical exam; at least the standard's minimum for the level (1.5.5). */
  durationMinutes: z.number().int().min(1).max(600),
  /** Task ids at this level, in the order candidates see them. */
  tasks: z.array(TaskId).min(1),
  /**
   * A practice paper may leave an occupational function without checks; its score rescales the
   * weights over the covered functions and says so. A real exam paper may not.
   */
  practice: z.boolean().default(false),
});

export type Paper = z.output<typeof PaperSchema>;

/**
 * tasks/banks/<id>.yaml: a level's task bank. A session may open with a paper drawn from it
 * (`session open --bank`): each slot picks `pick` tasks out of `from`, and every task of a slot
 * carries points in the slot's occupational function, so every draw covers every function.
 */
export const BankSchema = z.strictObject({
  id: TaskId,
  level: LevelSchema,
  /** Title of the drawn papers; the draw's seed is added to it. */
  title: BilingualSchema,
  durationMinutes: z.number().int().min(1).max(600),
  slots: z
    .array(
      z.strictObject({
        function: z.enum(['1', '2', '3', '4']),
        pick: z.number().int().min(1),
        from: z.array(TaskId).min(1),
      }),
    )
    .min(1),
});

export type Bank = z.output<typeof BankSchema>;
