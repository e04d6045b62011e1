import type { Bilingual } from '../core/errors.js';
import type { SessionRow } from '../sessions/session-service.js';
import { zhState } from '../sessions/state-machine.js';
import { escapeHtml as e } from '../core/html.js';
import { bi, htmlDocument } from './pages.js';

/** Texts examiners read, Chinese first with English beside it. */
export const DASH_TEXT = {
  title: { zh: '监考台', en: 'Examiner dashboard' },
  loginTitle: { zh: '监考登录', en: 'Examiner login' },
  tokenLabel: { zh: '监考令牌', en: 'Examiner token' },
  loginButton: { zh: '登录', en: 'Log in' },
  badToken: { zh: '监考令牌不正确。', en: 'The examiner token is not correct.' },
  tooMany: { zh: '尝试次数过多，请稍后再试。', en: 'Too many attempts. Please wait and try again.' },
  disabled: { zh: '未配置监考令牌（server.examinerToken），监考台已关闭。', en: 'No examiner token is configured (server.examinerToken): the dashboard is off.' },
  sessions: { zh: '场次', en: 'Sessions' },
  noSessions: { zh: '还没有场次。', en: 'No sessions yet.' },
  logout: { zh: '退出', en: 'Log out' },
} satisfies Record<string, Bilingual>;

function layout(title: Bilingual, body: string, bodyAttrs = ''): string {
  const header = `<span class="product">${bi(title)}</span>
<form method="post" action="/examiner/logout" class="logout"><button type="submit">${bi(DASH_TEXT.logout)}</button></form>`;
  return htmlDocument(title, '/examiner/static/dashboard.css', header, body, bodyAttrs);
}

/** `next`: where to go after logging in (an /examiner path the caller has checked). */
export function examinerLoginPage(error?: Bilingual, next?: string): string {
  const back = next ? `\n<input type="hidden" name="next" value="${e(next)}">` : '';
  const err = error ? `<p class="error" role="alert" id="login-error">${bi(error)}</p>` : '';
  return `<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(DASH_TEXT.loginTitle.zh)} · ${e(DASH_TEXT.loginTitle.en)}</title>
<link rel="stylesheet" href="/examiner/static/dashboard.css">
</head>
<body>
<header class="top"><span class="product">${bi(DASH_TEXT.title)}</span></header>
<main class="login">
<h1>${bi(DASH_TEXT.loginTitle)}</h1>
${err}
<form method="post" action="/examiner/login" autocomplete="off">
<label for="token">${bi(DASH_TEXT.tokenLabel)}</label>
<input id="token" name="token" type="password" maxlength="512" required autofocus>
<button type="submit">${bi(DASH_TEXT.loginButton)}</button>${back}
</form>
</main>
</body>
</html>`;
}

export function examinerMessagePage(message: Bilingual): string {
  return `<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>${e(DASH_TEXT.title.zh)} · ${e(DASH_TEXT.title.en)}</title>
<link rel="stylesheet" href="/examiner/static/dashboard.css"></head>
<body><main class="login"><p class="error" role="alert">${bi(message)}</p></main></body></html>`;
}

export function sessionListPage(sessions: SessionRow[]): string {
  const rows = sessions
    .slice()
    .reverse()
    .map(
      (s) =>
        `<tr><td><a href="/examiner/sessions/${encodeURIComponent(s.id)}">${e(s.id)}</a></td><td>${e(s.room)}</td><td>${e(s.paper_id)}</td><td>${e(zhState(s.state))} <span class="en" lang="en">${e(s.state)}</span></td><td>${e(s.created_at)}</td></tr>`,
    )
    .join('\n');
  return layout(
    DASH_TEXT.title,
    `<main class="dash">
<h1>${bi(DASH_TEXT.sessions)}</h1>
${
  sessions.length === 0
    ? `<p>${bi(DASH_TEXT.noSessions)}</p>`
    : `<table class="seats"><thead><tr><th>${bi({ zh: '场次', en: 'Session' })}</th><th>${bi({ zh: '考场', en: 'Room' })}</th><th>${bi({ zh: '试卷', en: 'Paper' })}</th><th>${bi({ zh: '状态', en: 'State' })}</th><th>${bi({ zh: '创建时间', en: 'Created' })}</th></tr></thead>
<tbody>${rows}</tbody></table>`
}
</main>`,
  );
}

/** The room's page: a shell the script fills from the event stream; roster strings only ever go in as text. */
export function dashboardPage(s: SessionRow): string {
  const th = (zh: string, en: string): string => `<th>${bi({ zh, en })}</th>`;
  return layout(
    DASH_TEXT.title,
    `<main class="dash" id="dashboard" data-session="${e(s.id)}">
<section class="room">
<h1><span id="room-name">${e(s.room)}</span> <small>${e(s.id)} · ${e(s.paper_id)}</small></h1>
<div class="room-bar">
<span>${bi({ zh: '场次状态', en: 'Room state' })}: <strong id="room-state" data-state="${e(s.state)}">${e(zhState(s.state))} <span class="en" lang="en">${e(s.state)}</span></strong></span>
<span>${bi({ zh: '考试时长', en: 'Duration' })}: <strong id="room-duration">${Math.round(s.duration_ms / 60_000)}</strong> ${bi({ zh: '分钟', en: 'min' })}</span>
<span>${bi({ zh: '最长剩余', en: 'Longest time left' })}: <strong id="room-clock">--:--:--</strong></span>
<span id="room-counts"></span>
<span id="live" class="live" data-live="connecting" role="status">${bi({ zh: '连接中…', en: 'connecting…' })}</span>
</div>
<div class="actions room-actions" data-scope="room">
<button type="button" data-action="start">${bi({ zh: '开始', en: 'Start' })}</button>
<button type="button" data-action="pause">${bi({ zh: '全部暂停', en: 'Pause all' })}</button>
<button type="button" data-action="resume">${bi({ zh: '全部恢复', en: 'Resume all' })}</button>
<label class="minutes">${bi({ zh: '延时', en: 'Extend by' })} <input type="number" id="room-minutes" min="1" max="240" value="10"> ${bi({ zh: '分钟', en: 'min' })}</label>
<button type="button" data-action="extend">${bi({ zh: '全部延时', en: 'Extend all' })}</button>
<button type="button" data-action="end" class="danger">${bi({ zh: '结束考试', en: 'End exam' })}</button>
</div>
<p id="notice" role="status" hidden></p>
</section>
<table class="seats" id="seats">
<thead><tr>${th('考位', 'Seat')}${th('准考证号', 'Candidate no.')}${th('姓名', 'Name')}${th('状态', 'State')}${th('各题沙箱', 'Task sandboxes')}${th('剩余时间', 'Time left')}${th('终端', 'Terminal')}${th('最近活动', 'Last activity')}${th('评分', 'Grading')}${th('得分', 'Score')}${th('操作', 'Actions')}</tr></thead>
<tbody></tbody>
</table>
</main>
<script src="/examiner/static/dashboard.js"></script>`,
    ' class="dashboard"',
  );
}
