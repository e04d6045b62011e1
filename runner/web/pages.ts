import type { Bilingual } from '../core/errors.js';
import { escapeHtml as e } from '../core/html.js';
import { renderMarkdown } from './markdown.js';
import type { SeatBinding, TaskSheet } from './access.js';

/** Texts candidates read, Chinese first with English beside it. */
export const TEXT = {
  product: { zh: '大模型部署工程师 · 实操考核', en: 'LLM Deployment Engineer · practical exam' },
  loginTitle: { zh: '考生登录', en: 'Candidate login' },
  codeLabel: { zh: '准入码', en: 'Access code' },
  loginButton: { zh: '登录', en: 'Log in' },
  badCode: { zh: '准入码无效或已失效，请核对后重试，或联系监考老师。', en: 'The access code is not valid. Check it, or ask the examiner.' },
  tooMany: { zh: '尝试次数过多，请稍后再试。', en: 'Too many attempts. Please wait and try again.' },
  loggedOut: { zh: '登录已失效，请重新输入准入码。', en: 'Your login has expired. Enter your access code again.' },
  remaining: { zh: '剩余时间', en: 'Time left' },
  notStarted: { zh: '未开始', en: 'not started' },
  tasks: { zh: '试题', en: 'Tasks' },
  terminal: { zh: '终端', en: 'Terminal' },
  connecting: { zh: '正在连接终端…', en: 'Connecting the terminal…' },
  terminalHint: {
    zh: '关闭或刷新页面会结束该终端及其前台进程；需要一直运行的服务请用 nohup 或 setsid 在后台启动。',
    en: 'Closing or reloading the page ends this terminal and what runs in its foreground; start services that must keep running with nohup or setsid.',
  },
  frozen: {
    zh: '考位已冻结（考试时间到或监考老师已收卷），终端已关闭。你启动的服务仍在运行，等待评分。',
    en: 'The seat is frozen (time is up or the examiner closed it): the terminal is closed. Your services keep running for grading.',
  },
  paused: {
    zh: '监考老师已暂停本考位，终端暂时关闭；恢复后刷新页面即可继续。',
    en: 'The examiner paused this seat: the terminal is closed for now. Reload the page once it resumes.',
  },
  logout: { zh: '退出', en: 'Log out' },
} satisfies Record<string, Bilingual>;

/** "中文 (English)" in one element, English in a muted span. */
export function bi(t: Bilingual): string {
  return `${e(t.zh)} <span class="en" lang="en">${e(t.en)}</span>`;
}

/** The page shell both the candidate's and the examiner's pages use. */
export function htmlDocument(title: Bilingual, stylesheet: string, header: string, body: string, bodyAttrs = ''): string {
  return `<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(title.zh)} · ${e(title.en)}</title>
<link rel="stylesheet" href="${stylesheet}">
</head>
<body${bodyAttrs}>
<header class="top">${header}</header>
${body}
</body>
</html>`;
}

function layout(title: Bilingual, body: string, bodyAttrs = ''): string {
  return htmlDocument(title, '/static/exam.css', `<span class="product">${bi(TEXT.product)}</span>`, body, bodyAttrs);
}

export function loginPage(error?: Bilingual): string {
  const err = error ? `<p class="error" role="alert" id="login-error">${bi(error)}</p>` : '';
  return layout(
    TEXT.loginTitle,
    `<main class="login">
<h1>${bi(TEXT.loginTitle)}</h1>
${err}
<form method="post" action="/login" autocomplete="off">
<label for="code">${bi(TEXT.codeLabel)}</label>
<input id="code" name="code" type="text" maxlength="64" required autofocus spellcheck="false">
<button type="submit">${bi(TEXT.loginButton)}</button>
</form>
</main>`,
  );
}

export function messagePage(title: Bilingual, message: Bilingual): string {
  return layout(title, `<main class="login"><h1>${bi(title)}</h1><p class="error" role="alert">${bi(message)}</p><p><a href="/">${bi(TEXT.loginTitle)}</a></p></main>`);
}

export function examPage(opts: { binding: SeatBinding; sheets: TaskSheet[]; closed: 'paused' | 'frozen' | null; now: Date }): string {
  const { binding, sheets } = opts;
  const frozen = opts.closed !== null;
  const notice = opts.closed === 'paused' ? TEXT.paused : TEXT.frozen;
  const tabs = sheets
    .map((s, i) => `<button type="button" class="tab${i === 0 ? ' active' : ''}" data-task="${e(s.id)}">${e(s.title.zh)}<span class="en" lang="en">${e(s.title.en)}</span></button>`)
    .join('');
  const panes = sheets
    .map(
      (s, i) => `<article class="sheet${i === 0 ? ' active' : ''}" data-task="${e(s.id)}">
<div class="lang-toggle"><button type="button" data-lang="zh" class="on">中文</button><button type="button" data-lang="en">English</button></div>
<section class="md zh" lang="zh-CN">${renderMarkdown(s.instructions.zh)}</section>
<section class="md en-sheet" lang="en" hidden>${renderMarkdown(s.instructions.en)}</section>
</article>`,
    )
    .join('\n');
  // One terminal per task, into that task's own sandbox; the page connects it when its tab is first opened.
  const withBox = new Set(binding.sandboxes.map((b) => b.taskId));
  const terms = sheets
    .filter((s) => withBox.has(s.id))
    .map(
      (s, i) => `<div class="term${i === 0 ? ' active' : ''}" data-task="${e(s.id)}"><div class="term-screen"></div><p class="term-status" role="status">${frozen ? bi(notice) : bi(TEXT.connecting)}</p><p class="term-hint">${bi(TEXT.terminalHint)}</p></div>`,
    )
    .join('\n');
  const attrs = ` data-seat="${e(binding.seat)}" data-ends-at="${e(binding.endsAt ?? '')}" data-now="${e(opts.now.toISOString())}" data-frozen="${frozen ? '1' : ''}" class="exam${frozen ? ' frozen' : ''}"`;
  return layout(
    TEXT.product,
    `<div class="bar">
<span class="who">${e(binding.candidate)}</span>
<span class="clock">${bi(TEXT.remaining)}: <strong id="clock">${binding.endsAt ? '--:--:--' : bi(TEXT.notStarted)}</strong></span>
<form method="post" action="/logout"><button type="submit">${bi(TEXT.logout)}</button></form>
</div>
<p id="frozen-banner" class="error" role="alert"${frozen ? '' : ' hidden'}><span data-reason="frozen"${opts.closed === 'paused' ? ' hidden' : ''}>${bi(TEXT.frozen)}</span><span data-reason="paused"${opts.closed === 'paused' ? '' : ' hidden'}>${bi(TEXT.paused)}</span></p>
<main class="exam-main">
<section class="sheets" aria-label="${e(TEXT.tasks.zh)} ${e(TEXT.tasks.en)}">
<nav class="tabs">${tabs}</nav>
${panes}
</section>
<section class="term-pane" aria-label="${e(TEXT.terminal.zh)} ${e(TEXT.terminal.en)}">
${terms}
</section>
</main>
<script src="/static/xterm.js"></script>
<script src="/static/addon-fit.js"></script>
<script src="/static/exam.js"></script>`,
    attrs,
  );
}
