import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { Command } from 'commander';
import { asDeploylabError, DeploylabError } from '../core/errors.js';
import { createLogger } from '../core/logger.js';
import { EXIT, printText, say } from '../core/output.js';
import { currentImageRef } from '../grading/task-runner.js';
import { startServer } from '../server/http-server.js';
import { loginWithCode, solveThroughTerminal } from '../sessions/demo-candidate.js';
import { loadExamPaper } from '../sessions/paper.js';
import { parseRoster } from '../sessions/roster.js';
import { verifyManifest } from '../sessions/archive.js';
import type { SessionService } from '../sessions/session-service.js';
import { webAppFromConfig } from '../web/from-config.js';
import { contextOf } from './context.js';
import { printPdfWarnings, printResetReport, printScores, printSeatCards, sessionServiceFor } from './session-commands.js';

const DEMO_ROSTER = `准考证号,姓名,身份证号
D0001,演示考生甲（参考答案）,11010519491231002X
D0002,演示考生乙（未作答）,110105194912310038
D0003,演示考生丙（完成一半）,DEMO0003
`;

/**
 * `deploylab demo` (npm run demo): a whole junior-v1 exam for three simulated candidates on the
 * local engine — one runs the reference solutions, one does nothing, one solves the first half of
 * the tasks — then grade, score sheet, archive, reset and a clean-host check. The candidates work
 * as people do: the runner's own HTTP server (candidate pages and terminals, over the demo's
 * store) runs on an ephemeral port; each logs in with the seat's one-time code and types the
 * reference solutions into each task's browser terminal (websocket → TTY exec). Bounded in time;
 * the server is closed and the session force-reset on any failure so nothing is left behind.
 */
export function registerDemoCommands(program: Command): void {
  program
    .command('demo')
    .description('演示：三名模拟考生的完整初级考试 (a complete junior exam for three simulated candidates)')
    .option('--paper <id>', '试卷 (paper)', 'junior-v1')
    .option('--timeout <minutes>', '总时限 (overall time limit, minutes)', '20')
    .action(async (o: { paper: string; timeout: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const t0 = Date.now();
      const step = (zh: string, en: string): void => printText(`\n== ${say(ctx.lang, zh, en)}  [${((Date.now() - t0) / 1000).toFixed(0)} s]`);
      const svc = await sessionServiceFor(ctx.config, ctx.lang);
      const id = `demo-${randomBytes(3).toString('hex')}`;
      let finished = false;
      let timer: NodeJS.Timeout | undefined;
      const limitMs = Number(o.timeout) * 60_000;
      // The candidate pages and terminals, as `deploylab serve` runs them, on an ephemeral port. The
      // demo narrates itself: the server's per-login and per-terminal info lines would drown it.
      const serverLog = createLogger(ctx.config.logLevel === 'info' ? 'warn' : ctx.config.logLevel);
      const app = webAppFromConfig(ctx.config, serverLog);
      let http: { server: Server; url: string } | undefined;
      const overtime = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new DeploylabError({ code: 'DEMO_TIMEOUT', fault: 'infrastructure', message: { zh: `演示超过 ${o.timeout} 分钟`, en: `the demo ran past ${o.timeout} minutes` } })),
          limitMs,
        );
      });
      try {
        await Promise.race([run(svc, id, o.paper, step), overtime]);
        finished = true;
      } catch (e) {
        const err = asDeploylabError(e);
        process.stderr.write(`${say(ctx.lang, '演示失败', 'demo failed')} [${err.code}]: ${err.text(ctx.lang)}\n`);
        const screen = err.details?.terminal;
        if (typeof screen === 'string') process.stderr.write(`--- ${say(ctx.lang, '终端最后几行', 'last lines of the terminal')} ---\n${screen}\n---\n`);
        process.exitCode = err.fault === 'infrastructure' ? EXIT.couldNotRun : EXIT.notReady;
      } finally {
        clearTimeout(timer);
        if (http) {
          http.server.closeAllConnections();
          await new Promise<void>((resolve) => http!.server.close(() => resolve()));
        }
        await app.close();
        if (!finished) {
          // Clean up after ourselves even on failure: remove everything labelled for the demo session.
          try {
            if (svc.list().some((s) => s.id === id)) {
              const r = await svc.reset(id, { force: true });
              printResetReport(ctx, r);
            }
          } catch (e) {
            process.stderr.write(`cleanup: ${asDeploylabError(e).message}\n`);
          }
        }
      }
      if (!finished && process.exitCode === EXIT.couldNotRun) {
        // Work still in flight after a timeout must not keep the process alive.
        setTimeout(() => process.exit(EXIT.couldNotRun), 100).unref();
      }

      async function run(s: SessionService, sessionId: string, paperId: string, show: typeof step): Promise<void> {
        const roster = parseRoster(Buffer.from(DEMO_ROSTER), 'demo roster');
        const paper = loadExamPaper(paperId);
        http = await startServer({ host: '127.0.0.1', port: 0, log: serverLog, web: app.web });
        const baseUrl = http.url;
        show('开设场次并准备考位', 'open the session and provision the seats');
        const opened = s.open({
          id: sessionId,
          paperId,
          room: 'DEMO',
          roster,
          images: { workspaceCpu: await currentImageRef(ctx.config, 'workspace-cpu'), toolbox: await currentImageRef(ctx.config, 'toolbox') },
          baseUrl: `${baseUrl}/`,
        });
        const prov = await s.provision(sessionId, { concurrency: 3 });
        if (prov.failed.length > 0) {
          throw new DeploylabError({ code: 'DEMO_PROVISION_FAILED', fault: 'infrastructure', message: { zh: `考位准备失败：${JSON.stringify(prov.failed)}`, en: `seats failed: ${JSON.stringify(prov.failed)}` } });
        }
        printSeatCards(ctx, s, sessionId, opened);

        show('开始考试', 'start the exam');
        await s.start(sessionId);
        const half = paper.tasks.slice(0, Math.max(1, Math.floor(paper.tasks.length / 2)));
        printText(
          say(
            ctx.lang,
            `模拟考生经浏览器终端作答：${baseUrl} 上用一次性登录码登录（HttpOnly Cookie），逐题打开该题终端（websocket → 考位 TTY，考生用户 uid 1000），键入并运行参考答案`,
            `simulated candidates work through the browser terminal path: log in at ${baseUrl} with the one-time access code (HttpOnly cookie), open each task's terminal (websocket → TTY exec in the seat as the candidate, uid 1000), type the reference solution and run it`,
          ),
        );
        printText(`  s01: ${paper.tasks.map((t) => t.task.id).join(', ')}   s02: -   s03: ${half.map((t) => t.task.id).join(', ')}`);
        let pathWarned = false;
        // The codes as the examiner hands them out: from opening the session (the store keeps only hashes).
        const work = async (seat: string, tasks: typeof paper.tasks): Promise<void> => {
          const cookie = await loginWithCode(baseUrl, opened.codes[seat] ?? '');
          printText(`  ${seat}: ${say(ctx.lang, '已登录', 'logged in')}`);
          for (const t of tasks) {
            const { runs, addedSbinToPath } = await solveThroughTerminal({ baseUrl, cookie, seat, loaded: t });
            if (addedSbinToPath && !pathWarned) {
              pathWarned = true;
              printText(
                say(
                  ctx.lang,
                  '⚠ 考位终端的登录 PATH 不含 /usr/sbin（nginx 等“找不到命令”）；模拟考生像真人一样自行 export PATH 补上。此问题应在考位镜像中修复。',
                  '⚠ the seat terminal\'s login PATH lacks /usr/sbin (nginx etc.: "command not found"); the simulated candidates add it with export PATH, as a person would. The seat image should fix this.',
                ),
              );
            }
            printText(`  ${seat} ${t.task.id}: ${runs.map((r) => `${r.script} exit ${r.exitCode} (${(r.durationMs / 1000).toFixed(1)} s)`).join(', ')}  [${say(ctx.lang, '浏览器终端', 'browser terminal')}]`);
          }
        };
        await Promise.all([work('s01', paper.tasks), work('s03', half)]);

        show('结束考试：冻结所有考位', 'end the exam: freeze every seat');
        await s.end(sessionId);
        show('评分', 'grade');
        const g = await s.grade(sessionId);
        if (g.errors.length > 0) throw new DeploylabError({ code: 'DEMO_GRADING_FAILED', fault: 'infrastructure', message: { zh: `评分失败：${JSON.stringify(g.errors)}`, en: `grading failed: ${JSON.stringify(g.errors)}` } });
        const rep = await s.writePrintableReport(sessionId);
        printPdfWarnings(ctx, rep.warnings);
        printScores(ctx, rep.seats);
        printText([rep.csv, rep.json, rep.html, ...(rep.pdf ? [rep.pdf] : [])].join('\n'));

        show('归档', 'archive');
        const a = await s.archive(sessionId);
        const bad = verifyManifest(a.dir);
        printText(say(ctx.lang, `${a.files} 个文件，清单校验${bad.length === 0 ? '通过' : `失败：${bad.join(', ')}`}`, `${a.files} file(s), manifest ${bad.length === 0 ? 'verified' : `MISMATCH: ${bad.join(', ')}`}`));

        show('复位并验证主机', 'reset and verify the host');
        const r = await s.reset(sessionId);
        printResetReport(ctx, r);

        const totals = rep.seats.map((x) => x.sheet?.total ?? NaN);
        const [full, none, part] = totals as [number, number, number];
        const shown = rep.seats.map((x) => x.sheet?.totalShown.toFixed(1) ?? '-').join(' / ');
        const ok = full >= 99.9 && none === 0 && part > 0 && part < full && bad.length === 0 && r.clean;
        show(ok ? '演示通过' : '演示结果不符合预期', ok ? 'demo passed' : 'demo result NOT as expected');
        printText(say(ctx.lang, `预期约 100 / 0 / 介于两者之间；实得 ${shown}`, `expected about 100 / 0 / in between; got ${shown}`));
        if (!ok) process.exitCode = EXIT.notReady;
      }
    });
}
