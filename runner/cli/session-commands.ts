import type { Command } from 'commander';
import type { Config } from '../core/config.js';
import { DeploylabError, type Bilingual, type Lang } from '../core/errors.js';
import { EXIT, printJson, printText, say, table } from '../core/output.js';
import { currentImageRef, dockerInSeatImages } from '../grading/task-runner.js';
import { lazySandboxDriverFor, requireBackend, sandboxDriverFor } from '../sandbox/backend.js';
import { parseDuration } from '../sandbox/labels.js';
import { readRoster } from '../sessions/roster.js';
import type { PdfWarning } from '../sessions/score-sheet-pdf.js';
import { clockOf, seatView } from '../sessions/ledger-store.js';
import { SessionService, type ResetReport, type SeatCodes, type SeatReport } from '../sessions/session-service.js';
import { remainingMs, zhState } from '../sessions/state-machine.js';
import { openStore } from '../store/db.js';
import { contextOf, type CliContext } from './context.js';

/**
 * The service over the configured store and the configured sandbox backend (`sandbox.driver`),
 * once the backend answers: ENGINE_UNREACHABLE or CLUSTER_UNREACHABLE otherwise.
 */
export async function sessionServiceFor(config: Config, lang: Lang, opts: { quiet?: boolean } = {}): Promise<SessionService> {
  const driver = sandboxDriverFor(config);
  await requireBackend(config);
  const progress = (l: Bilingual): void => {
    if (!opts.quiet) process.stderr.write(`${say(lang, l.zh, l.en)}\n`);
  };
  return new SessionService({
    db: openStore(config.dataDir),
    driver,
    dataDir: config.dataDir,
    progress,
    disk: config.disk,
  });
}

/**
 * The service for commands that read or annotate the store (ls, show, codes, report, mark): its
 * driver is built only if a seat is touched, so these work with the engine or the cluster down.
 */
export function storeSessionServiceFor(config: Config): SessionService {
  return new SessionService({ db: openStore(config.dataDir), driver: lazySandboxDriverFor(config), dataDir: config.dataDir, disk: config.disk });
}

/**
 * The seats and, when just issued, their codes. The store keeps only hashes: later calls show
 * whether each code has been used, and the cards on disk are where the codes are.
 */
export function printSeatCards(ctx: CliContext, svc: SessionService, id: string, issued?: { codes: SeatCodes; cards: { html: string; csv: string } }): void {
  const seats = svc.seats(id);
  const spec = svc.spec(id);
  const codeOf = (seat: string, redeemed: string | null): string =>
    issued?.codes[seat] ?? (redeemed ? say(ctx.lang, '已使用', 'used') : say(ctx.lang, '见考位卡', 'on the card'));
  printText(
    table(
      [say(ctx.lang, '考位', 'seat'), say(ctx.lang, '准考证号', 'candidate no.'), say(ctx.lang, '姓名', 'name'), say(ctx.lang, '状态', 'state'), 'URL', say(ctx.lang, '登录码', 'access code')],
      seats.filter((s) => !issued || issued.codes[s.seat_id] !== undefined).map((s) => [s.seat_id, s.candidate_no, s.name, ctx.lang === 'zh' ? zhState(s.state) : s.state, spec.baseUrl, codeOf(s.seat_id, s.code_redeemed_at)]),
    ),
  );
  const html = issued?.cards.html ?? `${svc.sessionDir(id)}/seat-cards.html`;
  const csv = issued?.cards.csv ?? `${svc.sessionDir(id)}/seat-cards.csv`;
  printText(say(ctx.lang, `考位卡：${html} 与 ${csv}`, `seat cards: ${html} and ${csv}`));
  printText(
    say(
      ctx.lang,
      '登录码只存哈希，之后无法再显示；丢失时用 deploylab session codes ID --reissue [--seat S] 重发（旧码作废）',
      'only hashes of the codes are kept and they cannot be shown again; if a card is lost: deploylab session codes ID --reissue [--seat S] (the old code stops working)',
    ),
  );
}

export function printPdfWarnings(ctx: CliContext, warnings: PdfWarning[]): void {
  for (const w of warnings) {
    process.stderr.write(`! [${w.code}] ${say(ctx.lang, w.message.zh, w.message.en)}
`);
    if (w.hint) process.stderr.write(`  → ${say(ctx.lang, w.hint.zh, w.hint.en)}
`);
  }
}

export function printScores(ctx: CliContext, seats: SeatReport[]): void {
  printText(
    table(
      [say(ctx.lang, '考位', 'seat'), say(ctx.lang, '准考证号', 'candidate no.'), say(ctx.lang, '姓名', 'name'), 'F1', 'F2', 'F3', 'F4', say(ctx.lang, '总分', 'total'), say(ctx.lang, '结果', 'result')],
      seats.map((r) => [
        r.seat,
        r.candidateNo,
        r.name,
        ...(r.sheet ? r.sheet.functions.map((f) => (f.ratio === null ? '-' : f.marks.toFixed(1))) : ['-', '-', '-', '-']),
        r.sheet ? r.sheet.totalShown.toFixed(1) : '-',
        !r.sheet ? say(ctx.lang, '未评分', 'not graded') : r.sheet.passed === null ? say(ctx.lang, '待定', 'pending') : r.sheet.passed ? say(ctx.lang, '合格', 'pass') : say(ctx.lang, '不合格', 'fail'),
      ]),
    ),
  );
  const notes = new Map<string, Bilingual>();
  for (const r of seats) for (const n of r.sheet?.notes ?? []) notes.set(n.en, n);
  for (const n of notes.values()) printText(`* ${say(ctx.lang, n.zh, n.en)}`);
}

export function printResetReport(ctx: CliContext, r: ResetReport): void {
  printText(say(ctx.lang, `已删除 ${r.removed} 项带本场次标签的对象`, `removed ${r.removed} object(s) labelled for the session`));
  if (r.cardsRemoved > 0) printText(say(ctx.lang, `已删除 ${r.cardsRemoved} 个考位卡文件（登录码明文）`, `deleted ${r.cardsRemoved} seat-card file(s) (the codes in clear)`));
  for (const l of r.leftovers) printText(`  ! ${l.kind} ${l.name}`);
  for (const p of r.portsHeld) printText(`  ! port ${p}`);
  if (r.gpu) printText(`GPU MiB: baseline ${r.gpu.baselineMiB.join(',')} → now ${r.gpu.nowMiB.join(',')} ${r.gpu.ok ? 'ok' : '!'}`);
  else printText(say(ctx.lang, 'GPU：本机无 nvidia-smi，跳过', 'GPU: no nvidia-smi on this host, skipped'));
  printText(r.clean ? say(ctx.lang, '✔ 机器就绪：没有残留的容器、网络、卷或端口', '✔ machine ready: no labelled container, network, volume or port left') : say(ctx.lang, '✘ 机器未就绪：见上方残留', '✘ machine NOT ready: leftovers above'));
}

function minutes(text: string): number {
  const ms = /^\d+(\.\d+)?$/.test(text) ? Number(text) * 60_000 : parseDuration(text);
  if (ms === null || !(ms > 0)) {
    throw new DeploylabError({ code: 'CLI_BAD_DURATION', fault: 'config', message: { zh: `无法识别的时长：${text}`, en: `unrecognised duration: ${text}` }, hint: { zh: '分钟数，或 90s、15m、2h', en: 'minutes, or 90s, 15m, 2h' } });
  }
  return ms;
}

/** `deploylab session ...` — the exam room: open, clock, freeze, grade, report, archive, reset. */
export function registerSessionCommands(program: Command): void {
  const session = program.command('session').description('考场场次 (exam sessions: one room, one paper, one roster)');

  session
    .command('open')
    .description('校验名单、开设场次、并行准备考位并打印考位卡 (validate roster, open, provision seats, print seat cards)')
    .option('--paper <id>', '试卷 (paper id, e.g. junior-v2)')
    .option('--bank <id>', '从题库抽题，代替 --paper (draw the paper from a task bank instead, e.g. junior)')
    .option('--seed <n>', '抽题种子，默认随机并记入场次 (draw seed; random by default, recorded with the session)')
    .requiredOption('--room <room>', '考场 (room, e.g. A101)')
    .requiredOption('--roster <file>', '考生名单 CSV：准考证号,姓名,身份证号 (roster CSV, UTF-8)')
    .option('--id <id>', '场次编号 (session id; default from room and time)')
    .option('--duration <minutes>', '考试时长，默认取试卷 (exam length; default: the paper\'s)')
    .option('--url <url>', '考生页面地址 (candidate page URL on the cards)', 'http://127.0.0.1:8700/')
    .option('--concurrency <n>', '同时准备的考位数 (seats provisioned at once)', '3')
    .option('--no-provision', '只开设，不准备考位 (plan only)')
    .action(async (o: { paper?: string; bank?: string; seed?: string; room: string; roster: string; id?: string; duration?: string; url: string; concurrency: string; provision: boolean }, cmd: Command) => {
      const ctx = contextOf(cmd);
      if ((o.paper === undefined) === (o.bank === undefined) || (o.seed !== undefined && o.bank === undefined)) {
        throw new DeploylabError({
          code: 'BAD_FLAG',
          fault: 'config',
          message: { zh: '请给出 --paper <试卷> 或 --bank <题库>（可加 --seed）之一', en: 'give either --paper <id> or --bank <id> (with an optional --seed), exactly one' },
        });
      }
      const roster = readRoster(o.roster);
      const svc = await sessionServiceFor(ctx.config, ctx.lang);
      // Disk for every seat at its quota, before any code is hashed or any row stored.
      if (o.provision) await svc.checkDiskReserve(roster.length);
      const images = {
        workspaceCpu: await currentImageRef(ctx.config, 'workspace-cpu'),
        toolbox: await currentImageRef(ctx.config, 'toolbox'),
        dockerInSeat: await dockerInSeatImages(ctx.config),
      };
      const { session: s, codes, cards, warnings } = svc.open({
        ...(o.paper !== undefined ? { paperId: o.paper } : { draw: { bank: o.bank!, ...(o.seed !== undefined ? { seed: Number(o.seed) } : {}) } }),
        room: o.room,
        roster,
        images,
        baseUrl: o.url,
        ...(o.id ? { id: o.id } : {}),
        ...(o.duration ? { durationMinutes: minutes(o.duration) / 60_000 } : {}),
      });
      for (const w of warnings) process.stderr.write(say(ctx.lang, `注意：${w.zh}\n`, `warning: ${w.en}\n`));
      const draw = svc.spec(s.id).draw;
      if (draw) process.stderr.write(say(ctx.lang, `试卷 ${s.paper_id} 由题库 ${draw.bank} 以种子 ${draw.seed} 抽出\n`, `paper ${s.paper_id} drawn from bank ${draw.bank} with seed ${draw.seed}\n`));
      process.stderr.write(say(ctx.lang, `场次 ${s.id} 已开设，${roster.length} 个考位\n`, `session ${s.id} opened with ${roster.length} seat(s)\n`));
      const prov = o.provision ? await svc.provision(s.id, { concurrency: Number(o.concurrency) }) : { ready: [], failed: [] };
      if (ctx.json) printJson({ ok: prov.failed.length === 0, session: svc.session(s.id), seats: svc.seats(s.id).map((x) => ({ ...seatView(x), accessCode: codes[x.seat_id] })), cards, failed: prov.failed });
      else printSeatCards(ctx, svc, s.id, { codes, cards });
      if (prov.failed.length > 0) process.exitCode = EXIT.couldNotRun;
    });

  session
    .command('provision <id>')
    .description('准备未就绪的考位（中断后可重跑）(provision seats not ready yet; safe to rerun after a crash)')
    .option('--concurrency <n>', '同时准备的考位数 (seats at once)', '3')
    .action(async (id: string, o: { concurrency: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const svc = await sessionServiceFor(ctx.config, ctx.lang);
      const r = await svc.provision(id, { concurrency: Number(o.concurrency) });
      if (ctx.json) printJson({ ok: r.failed.length === 0, ...r });
      else printSeatCards(ctx, svc, id);
      if (r.failed.length > 0) process.exitCode = EXIT.couldNotRun;
    });

  const clockCmd = (name: 'start' | 'pause' | 'resume', zh: string, en: string): void => {
    session
      .command(`${name} <id>`)
      .description(`${zh} (${en})`)
      .option('--seat <seat>', '只对一个考位 (one seat only)')
      .action(async (id: string, o: { seat?: string }, cmd: Command) => {
        const ctx = contextOf(cmd);
        const svc = await sessionServiceFor(ctx.config, ctx.lang);
        const seats = await svc[name](id, o.seat);
        if (ctx.json) printJson({ ok: true, session: svc.session(id).state, seats });
        else printText(say(ctx.lang, `${zh}：${seats.map((s) => s.seat_id).join(', ') || '无'}`, `${en}: ${seats.map((s) => s.seat_id).join(', ') || 'none'}`));
      });
  };
  clockCmd('start', '开始计时', 'start the clock');
  clockCmd('pause', '暂停（计时停止，考生无法操作）', 'pause (clock stops, candidate access closed)');
  clockCmd('resume', '继续', 'resume');

  session
    .command('extend <id>')
    .description('延长时间 (extend the time)')
    .requiredOption('--minutes <n>', '分钟数，或 90s/15m (minutes, or 90s/15m)')
    .option('--seat <seat>', '只对一个考位 (one seat only)')
    .action(async (id: string, o: { minutes: string; seat?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const svc = await sessionServiceFor(ctx.config, ctx.lang);
      const seats = await svc.extend(id, minutes(o.minutes), o.seat);
      if (ctx.json) printJson({ ok: true, seats });
      else printText(say(ctx.lang, `已延长：${seats.map((s) => s.seat_id).join(', ')}`, `extended: ${seats.map((s) => s.seat_id).join(', ')}`));
    });

  session
    .command('end <id>')
    .description('立即结束考试并冻结所有考位；--seat 只收一个考位的卷 (end now: freeze every seat; --seat: one seat hands in)')
    .option('--seat <seat>', '只结束一个考位（提前交卷）(one seat only: it hands in early)')
    .action(async (id: string, o: { seat?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const svc = await sessionServiceFor(ctx.config, ctx.lang);
      const ended = await svc.end(id, o.seat);
      const state = svc.session(id).state;
      if (ctx.json) printJson({ ok: true, state, ended: ended.map((s) => s.seat_id) });
      else if (!o.seat) printText(say(ctx.lang, '所有考位已冻结', 'every seat frozen'));
      else if (ended.length === 0) printText(say(ctx.lang, `考位 ${o.seat} 未在作答，无变化`, `seat ${o.seat} was not working: nothing changed`));
      else printText(say(ctx.lang, `考位 ${o.seat} 已交卷并冻结；场次状态：${zhState(state)}`, `seat ${o.seat} handed in and frozen; session state: ${state}`));
    });

  session
    .command('disk <id>')
    .description('考位磁盘用量：立即取样；--release 让被磁盘看管暂停的考位继续运行 (seat disk usage: sample now; --release lets a seat the disk watch stopped run again)')
    .option('--release <seat>', '恢复该考位的进程（考生权限不变，用 resume 恢复）(run that seat\'s processes again; access stays as it is, resume gives it back)')
    .action(async (id: string, o: { release?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const svc = await sessionServiceFor(ctx.config, ctx.lang);
      if (o.release) {
        const row = await svc.releaseDisk(id, o.release);
        if (!row) printText(say(ctx.lang, `考位 ${o.release} 未被磁盘看管暂停`, `seat ${o.release} was not stopped by the disk watch`));
        else printText(say(ctx.lang, `考位 ${o.release} 的进程已恢复，${svc.disk.graceSeconds} 秒内不会再次暂停`, `seat ${o.release} runs again; it is not stopped again for ${svc.disk.graceSeconds} s`));
      }
      const step = await svc.diskCheck(id);
      const rows = [...svc.diskReadings(id).values()];
      if (ctx.json) {
        printJson({ ok: true, hostFreeBytes: step.hostFreeBytes, halted: step.halted, seats: rows });
        return;
      }
      const mib = (b: number): string => (b / 1024 / 1024).toFixed(1);
      printText(
        table(
          ['seat', 'MiB', 'quota MiB', 'files', 'quota files', 'level', 'halted'],
          rows.map((r) => [r.seat_id, mib(r.bytes), mib(r.quota_bytes), r.files === null ? '?' : String(r.files), String(r.quota_files), r.level, r.halted ? (r.halted_reason ?? 'yes') : '']),
        ),
      );
      if (step.hostFreeBytes !== null) printText(say(ctx.lang, `主机可用 ${(step.hostFreeBytes / 1024 ** 3).toFixed(1)} GiB（保留 ${svc.disk.reserveGiB} GiB）`, `host free ${(step.hostFreeBytes / 1024 ** 3).toFixed(1)} GiB (reserve ${svc.disk.reserveGiB} GiB)`));
    });

  session
    .command('supervise <id>')
    .description('看管计时：到时自动冻结，然后评分（可在中断后重跑）(keep the clock, freeze at the end, then grade; resumable)')
    .option('--no-grade', '冻结后不评分 (do not grade after the freeze)')
    .action(async (id: string, o: { grade: boolean }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const svc = await sessionServiceFor(ctx.config, ctx.lang);
      const state = await svc.supervise(id, { grade: o.grade });
      if (ctx.json) printJson({ ok: true, state });
      else printText(say(ctx.lang, `场次状态：${zhState(state)}`, `session state: ${state}`));
    });

  session
    .command('grade <id>')
    .description('对冻结的考位评分（可重跑；已评分的场次重新评分）(grade frozen seats; resumable; regrades a graded session)')
    .option('--concurrency <n>', '同时评分的考位数 (seats at once; default 1 on a host with < 4 cores)')
    .action(async (id: string, o: { concurrency?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const svc = await sessionServiceFor(ctx.config, ctx.lang);
      const r = await svc.grade(id, o.concurrency ? { concurrency: Number(o.concurrency) } : {});
      if (ctx.json) printJson({ ok: r.errors.length === 0, ...r });
      else printScores(ctx, svc.report(id));
      if (r.errors.length > 0) process.exitCode = EXIT.couldNotRun;
    });

  session
    .command('codes <id>')
    .description('登录码状态；--reissue 重发新码并写出新考位卡，旧码作废 (access codes: used or not; --reissue issues new ones and new seat cards, the old codes stop working)')
    .option('--reissue', '重发：未使用登录码的全部考位，或 --seat 指定的考位（该考位已登录的浏览器会被登出）(reissue: every seat whose code is unused, or the --seat given, whose browsers are logged out)')
    .option('--seat <seat>', '只对一个考位 (one seat only)')
    .action(async (id: string, o: { reissue?: boolean; seat?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const svc = storeSessionServiceFor(ctx.config);
      if (!o.reissue) {
        const seats = svc.seats(id).filter((x) => !o.seat || x.seat_id === o.seat);
        if (o.seat && seats.length === 0) svc.seat(id, o.seat);
        if (ctx.json) printJson({ ok: true, seats: seats.map((x) => ({ seat: x.seat_id, candidateNo: x.candidate_no, state: x.state, hasCode: x.access_code_hash !== null, redeemedAt: x.code_redeemed_at })) });
        else printSeatCards(ctx, svc, id);
        return;
      }
      const r = svc.reissueCodes(id, o.seat ? { seat: o.seat } : {});
      if (ctx.json) printJson({ ok: true, ...r });
      else printSeatCards(ctx, svc, id, r);
    });

  session
    .command('report <id>')
    .description('成绩单（按标准权重）：写出 CSV、JSON 与可打印的 HTML/PDF 成绩单 (score sheet under the standard\'s weights: CSV, JSON and a printable HTML/PDF sheet)')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const svc = storeSessionServiceFor(ctx.config);
      const r = await svc.writePrintableReport(id);
      printPdfWarnings(ctx, r.warnings);
      if (ctx.json) printJson({ ok: true, ...r });
      else {
        printScores(ctx, r.seats);
        printText([r.csv, r.json, r.html, ...(r.pdf ? [r.pdf] : [])].join('\n'));
      }
      // No Chromium is a known gap of the host (the HTML prints too); Chromium failing is not.
      if (r.warnings.some((w) => w.code === 'REPORT_PDF_FAILED')) process.exitCode = EXIT.couldNotRun;
    });

  session
    .command('mark <id>')
    .description('考评员评分（追加到台账，最新者生效）(examiner mark, appended to the ledger; the latest counts)')
    .requiredOption('--seat <seat>', '考位 (seat)')
    .requiredOption('--task <task>', '考题 (task id)')
    .requiredOption('--check <check>', '检查项 (check id)')
    .requiredOption('--earned <points>', '得分 (points earned)')
    .requiredOption('--examiner <name>', '考评员 (examiner)')
    .requiredOption('--reason <text>', '理由 (reason)')
    .action(async (id: string, o: { seat: string; task: string; check: string; earned: string; examiner: string; reason: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const svc = storeSessionServiceFor(ctx.config);
      svc.mark(id, o.seat, o.task, o.check, o.examiner, Number(o.earned), o.reason);
      if (ctx.json) printJson({ ok: true });
      else printScores(ctx, svc.report(id));
    });

  session
    .command('archive <id>')
    .description('归档：工作区、证据、成绩、台账与 SHA-256 清单 (archive workspaces, evidence, scores, ledger with a SHA-256 manifest)')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const svc = await sessionServiceFor(ctx.config, ctx.lang);
      const r = await svc.archive(id);
      if (ctx.json) printJson({ ok: true, ...r });
      else printText(say(ctx.lang, `已归档 ${r.files} 个文件：${r.dir}（清单 SHA-256 ${r.manifestSha256}）`, `archived ${r.files} file(s): ${r.dir} (manifest SHA-256 ${r.manifestSha256})`));
    });

  session
    .command('reset <id>')
    .description('复位：删除本场次的一切并验证主机干净 (remove everything of the session and verify the host is clean)')
    .option('--force', '未归档也复位（证据将丢失）(reset an unarchived session; evidence is lost)')
    .action(async (id: string, o: { force?: boolean }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const svc = await sessionServiceFor(ctx.config, ctx.lang);
      const r = await svc.reset(id, { force: Boolean(o.force) });
      if (ctx.json) printJson({ ok: r.clean, ...r });
      else printResetReport(ctx, r);
      if (!r.clean) process.exitCode = EXIT.notReady;
    });

  session
    .command('reconcile <id>')
    .description('按标签与引擎核对（重启后）(reconcile with the engine by labels, after a restart)')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const svc = await sessionServiceFor(ctx.config, ctx.lang);
      const r = await svc.reconcile(id);
      printJson({ ok: r.missing.length === 0, ...r });
    });

  session
    .command('ls')
    .description('列出场次 (list sessions)')
    .action(async (_o: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const svc = storeSessionServiceFor(ctx.config);
      const rows = svc.list();
      if (ctx.json) printJson({ ok: true, sessions: rows.map((r) => ({ ...r, spec: JSON.parse(r.spec) as unknown })) });
      else printText(table(['id', 'paper', 'room', 'state', 'created'], rows.map((r) => [r.id, r.paper_id, r.room, ctx.lang === 'zh' ? zhState(r.state) : r.state, r.created_at])));
    });

  session
    .command('show <id>')
    .description('场次与考位状态 (session and seat states)')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const svc = storeSessionServiceFor(ctx.config);
      const s = svc.session(id);
      const seats = svc.seats(id);
      const drift = svc.taskDrift(id);
      const now = Date.now();
      if (ctx.json) {
        printJson({ ok: true, session: { ...s, spec: svc.spec(id) }, tasksChangedOnDisk: drift, seats: seats.map((x) => ({ ...seatView(x), remainingMs: remainingMs(clockOf(x), now) })) });
        return;
      }
      printText(`${s.id}  ${s.paper_id}  ${s.room}  ${ctx.lang === 'zh' ? zhState(s.state) : s.state}`);
      if (drift.length > 0) {
        const ids = drift.map((d) => d.taskId).join(', ');
        printText(ctx.lang === 'zh' ? `注意：试题在开场后被修改（${ids}），本场按开场时固定的副本评分` : `note: task(s) changed on disk since the session opened (${ids}); this session grades the copy pinned at open`);
      }
      printText(
        table(
          ['seat', 'candidate', 'state', 'remaining', 'error'],
          seats.map((x) => [x.seat_id, `${x.candidate_no} ${x.name}`, x.state, `${Math.max(0, Math.round(remainingMs(clockOf(x), now) / 1000))}s`, x.last_error ?? '']),
        ),
      );
    });
}
