import { resolve } from 'node:path';
import type { Command } from 'commander';
import { DeploylabError } from '../core/errors.js';
import { EXIT, printJson, printText, say, table } from '../core/output.js';
import { LEVELS, levelOf, loadCatalogue, findSkill, type Level } from '../tasks/catalogue.js';
import { levelCoverage, loadNotGraded, NOT_GRADED_FILE } from '../tasks/coverage.js';
import { DEFAULT_TASKS_ROOT, formatProblem, loadTaskTree, validatePaths, pointsByFunction, type LoadedTask } from '../tasks/loader.js';
import { contextOf } from './context.js';
import { drawCount, randomSeed } from '../tasks/bank.js';
import { drawExamPaper } from '../sessions/paper.js';
import { newVerifySession, splitByHostFit, verifyDepsFromConfig, verifyTasks, type TaskVerifyReport } from '../grading/verify.js';
import { gatherGpu } from '../host/inventory.js';
import type { GpuFacts } from '../host/types.js';

function parseLevel(v: string | undefined): Level | undefined {
  if (v === undefined) return undefined;
  if ((LEVELS as readonly string[]).includes(v)) return v as Level;
  throw new DeploylabError({
    code: 'BAD_FLAG',
    fault: 'config',
    message: { zh: `未知等级：${v}`, en: `unknown level: ${v}` },
    hint: { zh: `可选：${LEVELS.join(', ')}`, en: `one of ${LEVELS.join(', ')}` },
  });
}

function tasksRoot(cmd: Command): string {
  let c: Command | null = cmd;
  while (c) {
    const dir = c.opts<{ tasksDir?: string }>().tasksDir;
    if (dir) return resolve(dir);
    c = c.parent;
  }
  return DEFAULT_TASKS_ROOT;
}

/** `deploylab tasks list|show|validate` and `deploylab standard show`. */
export function registerTaskCommands(program: Command): void {
  const tasks = program
    .command('tasks')
    .description('考题：列出、查看、校验 (tasks: list, show, validate)')
    .option('--tasks-dir <dir>', '考题目录 (tasks folder; the project’s tasks/ by default)');

  tasks
    .command('list')
    .description('列出考题 (list tasks)')
    .option('--level <level>', 'junior | intermediate | senior')
    .action((opts: { level?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const level = parseLevel(opts.level);
      const tree = loadTaskTree(tasksRoot(cmd));
      const rows = tree.tasks.filter((t) => !level || t.task.level === level).sort((a, b) => LEVELS.indexOf(a.task.level) - LEVELS.indexOf(b.task.level) || a.task.id.localeCompare(b.task.id));
      if (ctx.json) {
        printJson({
          ok: true,
          tasks: rows.map((t) => ({
            id: t.task.id,
            level: t.task.level,
            title: t.task.title,
            version: t.task.version,
            profile: t.task.needs.profile,
            estimatedMinutes: t.task.needs.estimatedMinutes,
            skills: [...new Set(t.task.checks.map((c) => c.skill))],
            points: t.task.checks.reduce((a, c) => a + c.points, 0),
          })),
          invalid: tree.problems.length,
        });
        return;
      }
      printText(
        table(
          [say(ctx.lang, '编号', 'id'), say(ctx.lang, '等级', 'level'), say(ctx.lang, '标题', 'title'), say(ctx.lang, '技能项', 'skills'), say(ctx.lang, '分值', 'points'), say(ctx.lang, '分钟', 'min')],
          rows.map((t) => [
            t.task.id,
            t.task.level,
            ctx.lang === 'zh' ? `${t.task.title.zh} (${t.task.title.en})` : t.task.title.en,
            [...new Set(t.task.checks.map((c) => c.skill))].join(' '),
            String(t.task.checks.reduce((a, c) => a + c.points, 0)),
            String(t.task.needs.estimatedMinutes),
          ]),
        ),
      );
      if (tree.problems.length > 0) {
        process.stderr.write(say(ctx.lang, `另有 ${tree.problems.length} 处问题，运行 tasks validate 查看`, `${tree.problems.length} problem(s) hidden; run tasks validate`) + '\n');
      }
    });

  tasks
    .command('show <id>')
    .description('查看考题（中英文）(show a task, both languages)')
    .action((id: string, _opts: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const tree = loadTaskTree(tasksRoot(cmd));
      const t = tree.tasks.find((x) => x.task.id === id);
      if (!t) {
        const broken = tree.problems.filter((p) => p.file.includes(`/${id}/`));
        throw new DeploylabError({
          code: 'TASK_NOT_FOUND',
          fault: 'config',
          message: { zh: `没有有效的考题：${id}`, en: `no valid task: ${id}` },
          hint: broken.length
            ? { zh: '该考题文件有问题，运行 tasks validate 查看', en: 'the task has problems; run tasks validate' }
            : { zh: `可选：${tree.tasks.map((x) => x.task.id).join(', ')}`, en: `known: ${tree.tasks.map((x) => x.task.id).join(', ')}` },
        });
      }
      const cat = loadCatalogue();
      const { task } = t;
      if (ctx.json) {
        printJson({ ok: true, task, instructions: t.instructions, dir: t.dir });
        return;
      }
      const lines: string[] = [
        `${task.title.zh}`,
        `${task.title.en}`,
        '',
        `${say(ctx.lang, '编号', 'id')}: ${task.id}   ${say(ctx.lang, '等级', 'level')}: ${levelOf(cat, task.level).zh} ${task.level}   ${say(ctx.lang, '版本', 'version')}: ${task.version}`,
        `${say(ctx.lang, '环境', 'needs')}: ${task.needs.profile}, ${task.needs.cpus} CPU, ${task.needs.memoryMiB} MiB${task.needs.gpus ? `, ${task.needs.gpus} GPU` : ''}, ~${task.needs.estimatedMinutes} min`,
        '',
        table(
          [say(ctx.lang, '检查项', 'check'), say(ctx.lang, '技能项', 'skill'), say(ctx.lang, '分值', 'points'), say(ctx.lang, '探针', 'probe'), say(ctx.lang, '内容', 'what')],
          task.checks.map((c) => [c.id, c.skill, String(c.points), c.probe.kind, `${c.title.zh} / ${c.title.en}`]),
        ),
        '',
        ...[...new Set(task.checks.map((c) => c.skill))].map((s) => {
          const sk = findSkill(cat, task.level, s);
          return `${s} ${sk?.zh ?? ''}\n      ${sk?.en ?? ''}`;
        }),
        '',
        '──────── 中文 ────────',
        t.instructions.zh.trimEnd(),
        '',
        '──────── English ────────',
        t.instructions.en.trimEnd(),
      ];
      printText(lines.join('\n'));
    });

  tasks
    .command('draw')
    .description('从题库抽一份试卷并显示（不开设场次）(draw a paper from a task bank and show it; opens nothing)')
    .requiredOption('--bank <id>', '题库 (bank id, e.g. junior)')
    .option('--seed <n>', '抽题种子，同一种子抽出同一份试卷；默认随机 (draw seed: the same seed draws the same paper; random by default)')
    .action((o: { bank: string; seed?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const seed = o.seed === undefined ? randomSeed() : Number(o.seed);
      const drawn = drawExamPaper(o.bank, seed, tasksRoot(cmd));
      try {
        const { exam, draw } = drawn;
        const bank = loadTaskTree(tasksRoot(cmd)).banks.find((b) => b.bank.id === o.bank)!.bank;
        const skills = [...new Set(exam.tasks.flatMap((t) => t.task.checks.map((c) => c.skill)))].sort();
        if (ctx.json) {
          printJson({ ok: true, draw, possiblePapers: drawCount(bank), paper: exam.paper, skills, pointsByFunction: pointsByFunction(exam.tasks.map((t) => t.task)) });
          return;
        }
        printText(
          [
            `${exam.paper.title.zh}`,
            `${exam.paper.title.en}`,
            `${say(ctx.lang, '试卷', 'paper')}: ${exam.paper.id}   ${say(ctx.lang, '题库', 'bank')}: ${draw.bank}   ${say(ctx.lang, '种子', 'seed')}: ${draw.seed}   ${say(ctx.lang, '可能的试卷数', 'possible papers')}: ${drawCount(bank)}   ${exam.paper.durationMinutes} min`,
            '',
            table(
              [say(ctx.lang, '编号', 'id'), say(ctx.lang, '标题', 'title'), say(ctx.lang, '技能项', 'skills'), say(ctx.lang, '分值', 'points')],
              exam.tasks.map((t) => [t.task.id, `${t.task.title.zh} (${t.task.title.en})`, [...new Set(t.task.checks.map((c) => c.skill))].join(' '), String(t.task.checks.reduce((a, c) => a + c.points, 0))]),
            ),
            '',
            `${say(ctx.lang, '覆盖技能项', 'skill items covered')} (${skills.length}): ${skills.join(' ')}`,
          ].join('\n'),
        );
      } finally {
        drawn.dispose();
      }
    });

  tasks
    .command('validate [paths...]')
    .description('校验考题与试卷，一次列出全部问题 (validate tasks and papers; every problem at once)')
    .action((paths: string[], _opts: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const tree = validatePaths(paths, tasksRoot(cmd));
      const coverage = tree.papers.map((p) => {
        const ts = p.paper.tasks.map((id) => tree.tasks.find((t) => t.task.id === id)?.task).filter((t) => t !== undefined);
        return { id: p.paper.id, practice: p.paper.practice, pointsByFunction: pointsByFunction(ts) };
      });
      if (ctx.json) {
        printJson({ ok: tree.problems.length === 0, tasks: tree.tasks.map((t) => t.task.id), papers: coverage, problems: tree.problems });
      } else if (tree.problems.length === 0) {
        printText(say(ctx.lang, `全部有效：${tree.tasks.length} 个考题，${tree.papers.length} 份试卷`, `all valid: ${tree.tasks.length} task(s), ${tree.papers.length} paper(s)`));
        for (const c of coverage) {
          if (c.practice) printText(say(ctx.lang, `  ${c.id}：练习卷`, `  ${c.id}: practice paper`) + ` — ${JSON.stringify(c.pointsByFunction)}`);
        }
      } else {
        printText(say(ctx.lang, `发现 ${tree.problems.length} 处问题`, `${tree.problems.length} problem(s) found`));
        for (const p of tree.problems) printText(`  ${formatProblem(p)}`);
      }
      if (tree.problems.length > 0) process.exitCode = EXIT.badInput;
    });

  tasks
    .command('verify [ids...]')
    .description('在真实容器上验证考题：未作答 0 分、参考答案满分、投机做法在所列检查项 0 分、另解满分、重置后 0 分 (prove tasks on real seats: untouched zero, reference full marks, each tamper zero on its named checks, each alternative full marks, reset zero)')
    .option('--all', '验证全部考题 (every task)')
    .option('--keep', '保留考位以便排查 (keep the seats for inspection)')
    .action(async (ids: string[], opts: { all?: boolean; keep?: boolean }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const tree = loadTaskTree(tasksRoot(cmd));
      if (!opts.all && ids.length === 0) {
        throw new DeploylabError({ code: 'BAD_FLAG', fault: 'config', message: { zh: '请给出考题编号或 --all', en: 'give task ids or --all' } });
      }
      let chosen: LoadedTask[];
      if (opts.all) {
        if (tree.problems.length > 0) {
          throw new DeploylabError({
            code: 'TASKS_INVALID',
            fault: 'config',
            message: { zh: `考题文件有 ${tree.problems.length} 处问题`, en: `task files have ${tree.problems.length} problem(s)` },
            hint: { zh: '运行 deploylab tasks validate 查看', en: 'run deploylab tasks validate' },
            details: { problems: tree.problems },
          });
        }
        chosen = tree.tasks;
      } else {
        const unknown = ids.filter((id) => !tree.tasks.some((t) => t.task.id === id));
        if (unknown.length > 0) {
          throw new DeploylabError({
            code: 'TASK_NOT_FOUND',
            fault: 'config',
            message: { zh: `没有有效的考题：${unknown.join(', ')}`, en: `no valid task: ${unknown.join(', ')}` },
            hint: { zh: `可选：${tree.tasks.map((x) => x.task.id).join(', ')}`, en: `known: ${tree.tasks.map((x) => x.task.id).join(', ')}` },
          });
        }
        chosen = ids.map((id) => tree.tasks.find((t) => t.task.id === id)!);
      }
      // The host's fit first: a GPU task on a host without the GPUs is reported, never run, and
      // needs no engine (nvidia-smi is asked only when a chosen task needs GPUs).
      const session = newVerifySession();
      const gpu: GpuFacts = chosen.some((t) => t.task.needs.gpus > 0) ? await gatherGpu() : { state: 'absent' };
      const { runnable, notRun } = splitByHostFit(chosen, gpu, session);
      const ran =
        runnable.length === 0
          ? []
          : await verifyTasks(runnable, {
              ...(await verifyDepsFromConfig(ctx.config)),
              session,
              keep: Boolean(opts.keep),
              progress: (l) => process.stderr.write(`${l.zh === l.en ? l.en : say(ctx.lang, l.zh, l.en)}\n`),
            });
      const reports = chosen.map((t) => [...ran, ...notRun].find((r) => r.taskId === t.task.id)!);
      // Skipped tasks are neither verified nor failed: they do not decide the exit code, and are listed.
      const judged = reports.filter((r) => !r.skipped);
      const notVerified = reports.filter((r) => r.skipped).map((r) => r.taskId);
      const couldNotRun = judged.some((r) => r.error && r.error.fault !== 'config');
      const ok = judged.every((r) => r.ok);
      if (ctx.json) printJson({ ok, tasks: reports, notVerified });
      else printText(verifyText(ctx.lang, reports));
      process.exitCode = ok ? EXIT.ok : couldNotRun ? EXIT.couldNotRun : EXIT.notReady;
    });

  const standard = program.command('standard').description('评价标准目录 (the skill standard as data)');
  standard
    .command('show')
    .description('显示职业功能、工作内容、技能要求与权重 (functions, work contents, skill items, weights)')
    .option('--level <level>', 'junior | intermediate | senior')
    .action((opts: { level?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const level = parseLevel(opts.level);
      const cat = loadCatalogue();
      const levels = level ? [levelOf(cat, level)] : cat.levels;
      if (ctx.json) {
        printJson({
          ok: true,
          standard: cat.standard,
          exam: cat.exam,
          levels: levels.map((l) => ({ ...l, weights: { practical: cat.weights.practical[l.code], theory: cat.weights.theory[l.code] } })),
        });
        return;
      }
      const out: string[] = [`${cat.standard.title.zh}（${cat.standard.edition.zh}）`, cat.standard.title.en, ''];
      for (const l of levels) {
        const w = cat.weights.practical[l.code];
        out.push(`== ${l.zh} ${l.en} (${l.code}) — ${say(ctx.lang, '技能操作', 'practical')} ≥ ${cat.exam.practicalMinMinutes[l.code]} min, ${say(ctx.lang, '合格', 'pass')} ≥ ${cat.exam.passMark}/${cat.exam.marksOutOf}`);
        const rows: string[][] = [];
        for (const f of l.functions) {
          rows.push([f.code, `${f.zh} [${w[f.code]}%]`, f.en]);
          for (const wc of f.workContents) {
            rows.push([`  ${wc.code}`, wc.zh, wc.en]);
            for (const s of wc.skills) rows.push([`    ${s.code}`, s.zh, s.en]);
          }
        }
        out.push(table([say(ctx.lang, '编号', 'code'), '中文', 'English'], rows), '');
      }
      printText(out.join('\n'));
    });

  standard
    .command('coverage')
    .description('题库覆盖了哪些技能项、由哪些考题评分，未覆盖的及其理由 (which skill items the task bank grades and by which tasks; the uncovered ones and why)')
    .option('--level <level>', 'junior | intermediate | senior')
    .action((opts: { level?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const level = parseLevel(opts.level);
      const cat = loadCatalogue();
      const root = tasksRoot(cmd);
      const tree = loadTaskTree(root, cat);
      const notes = loadNotGraded(root, cat);
      const levels = (level ? [level] : LEVELS).map((l) => levelCoverage(cat, tree, l, notes));
      if (ctx.json) {
        printJson({ ok: tree.problems.length === 0 && levels.every((l) => l.staleNotes.length === 0), levels, problems: tree.problems });
        return;
      }
      const out: string[] = [];
      for (const l of levels) {
        const name = levelOf(cat, l.level);
        out.push(`== ${name.zh} ${name.en}: ${say(ctx.lang, `考题覆盖 ${l.covered}/${l.total} 个技能项`, `${l.covered} of ${l.total} skill items graded by a task`)}`);
        const rows = l.items.map((i) => [
          i.skill.code,
          i.tasks.length > 0
            ? i.tasks.map((t) => `${t.id} (${t.checks.length} ${say(ctx.lang, '项检查', 'check(s)')}, ${+t.points.toFixed(2)} ${say(ctx.lang, '分', 'pts')}${t.papers.length > 0 ? `; ${t.papers.join(', ')}` : ''})`).join('; ')
            : `— ${say(ctx.lang, i.uncovered!.zh, i.uncovered!.en)}`,
        ]);
        out.push(table([say(ctx.lang, '技能项', 'skill item'), say(ctx.lang, '评分考题（检查项、分值；所在试卷）', 'graded by (checks, points; papers)')], rows));
        for (const s of l.staleNotes) out.push(say(ctx.lang, `! ${s} 记为不评分，但已有考题评分它：请更新 ${NOT_GRADED_FILE}`, `! ${s} is recorded as not graded, yet a task grades it: update ${NOT_GRADED_FILE}`));
        out.push('');
      }
      for (const p of tree.problems) out.push(`  ${formatProblem(p)}`);
      printText(out.join('\n'));
      if (tree.problems.length > 0 || levels.some((l) => l.staleNotes.length > 0)) process.exitCode = EXIT.badInput;
    });
}

function verifyText(lang: 'zh' | 'en', reports: TaskVerifyReport[]): string {
  const pts = (g: TaskVerifyReport['grades']['solved']): string => (g ? `${+g.earned.toFixed(2)}/${g.possible}` : '-');
  // Cases that held, out of those run: "3/3 ok".
  const cases = (r: TaskVerifyReport, kind: 'tamper' | 'alternative'): string => {
    const list = r.cases.filter((c) => c.kind === kind);
    return list.length === 0 ? '-' : `${list.filter((c) => c.ok).length}/${list.length} ok`;
  };
  const out = [
    table(
      [
        say(lang, '考题', 'task'),
        say(lang, '结果', 'result'),
        say(lang, '未作答', 'untouched'),
        say(lang, '参考答案', 'solved'),
        say(lang, '投机做法', 'tampers'),
        say(lang, '另解', 'alternatives'),
        say(lang, '重置后', 'reset'),
        say(lang, '用时', 'wall'),
      ],
      reports.map((r) => [
        r.taskId,
        r.ok ? say(lang, '通过', 'verified') : r.skipped ? say(lang, '未验证（需 GPU 主机）', 'NOT VERIFIED (needs a GPU host)') : r.error ? say(lang, '无法运行', 'could not run') : say(lang, '未通过', 'FAILED'),
        pts(r.grades.untouched),
        pts(r.grades.solved),
        cases(r, 'tamper'),
        cases(r, 'alternative'),
        pts(r.grades.reset),
        `${(r.wallMs / 1000).toFixed(1)} s`,
      ]),
    ),
  ];
  for (const r of reports) {
    for (const c of r.cases) {
      const label = c.kind === 'tamper' ? say(lang, '投机做法', 'tamper') : say(lang, '另解', 'alternative');
      const held = c.ok ? say(lang, '符合预期', 'as required') : say(lang, '未符合预期', 'NOT as required');
      out.push(`${r.taskId} / ${label} ${c.script}: ${pts(c.grade)} — ${held}: ${say(lang, c.title.zh, c.title.en)}`);
    }
    if (r.error) out.push(`${r.taskId}: [${r.error.code}] ${say(lang, r.error.message.zh, r.error.message.en)}`);
    if (r.skipped) out.push(`${r.taskId}: ${say(lang, r.skipped.reason.zh, r.skipped.reason.en)}`);
    for (const f of r.failures) {
      const where = [r.taskId, f.phase, f.case, f.checkId, f.kind].filter(Boolean).join(' / ');
      out.push(`${where}: ${say(lang, f.reason.zh, f.reason.en)}${f.summary ? ` — ${say(lang, f.summary.zh, f.summary.en)}` : ''}`);
    }
  }
  const skipped = reports.filter((r) => r.skipped).map((r) => r.taskId);
  if (skipped.length > 0) {
    out.push(say(lang, `本机未验证 ${skipped.length} 道考题（本机无其所需 GPU）：${skipped.join(', ')}`, `${skipped.length} task(s) NOT verified on this host (it lacks the GPUs they need): ${skipped.join(', ')}`));
  }
  return out.join('\n');
}
