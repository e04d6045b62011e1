/* global document, window, EventSource */
// The examiner's room dashboard: rows from the server's event stream, clocks counted down here
// between snapshots, the clock actions as buttons. Roster strings only ever go in as text.
(function () {
  'use strict';
  var root = document.getElementById('dashboard');
  if (!root) return;
  var base = '/examiner/sessions/' + encodeURIComponent(root.getAttribute('data-session'));
  var tbody = document.querySelector('#seats tbody');
  var liveEl = document.getElementById('live');
  var notice = document.getElementById('notice');
  var minutesInput = document.getElementById('room-minutes');
  var snap = null;
  var rowsBySeat = {};
  var offset = 0; // server clock minus ours
  var es = null;
  var retries = 0;
  var MAX_RETRIES = 120;

  var SANDBOX_ZH = { running: '运行中', frozen: '已冻结', degraded: '异常', missing: '缺失', unknown: '未知' };
  var GRADING = {
    running: ['评分中', 'grading'], complete: ['已完成', 'complete'], incomplete: ['未完成', 'incomplete'], error: ['出错', 'error'],
  };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  /** "中文 English" with the English muted. */
  function bi(target, zh, en) {
    target.appendChild(document.createTextNode(zh + ' '));
    var s = el('span', 'en', en);
    s.lang = 'en';
    target.appendChild(s);
    return target;
  }
  function say(zh, en, isError) {
    notice.textContent = '';
    bi(notice, zh, en);
    notice.hidden = false;
    notice.className = isError ? 'error' : 'ok';
  }
  function live(state, zh, en) {
    liveEl.setAttribute('data-live', state);
    liveEl.textContent = '';
    bi(liveEl, zh, en);
  }
  function pad(n) { return (n < 10 ? '0' : '') + n; }
  function hms(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    return pad(Math.floor(s / 3600)) + ':' + pad(Math.floor(s / 60) % 60) + ':' + pad(s % 60);
  }
  function remaining(c) {
    var used = c.usedMs + (c.runningSince === null ? 0 : Math.max(0, Date.now() + offset - c.runningSince));
    return c.allowedMs - used;
  }
  function ago(iso) {
    var ms = Date.now() + offset - Date.parse(iso);
    var m = Math.max(0, Math.floor(ms / 60000));
    var t = new Date(Date.parse(iso));
    var clock = pad(t.getHours()) + ':' + pad(t.getMinutes()) + ':' + pad(t.getSeconds());
    return m < 1 ? [clock + '（刚刚）', 'just now'] : [clock + '（' + m + ' 分钟前）', m + ' min ago'];
  }

  // ---- rendering ---------------------------------------------------------------------------

  var WORKING = { ready: true, running: true, paused: true };
  // Room buttons offered in each room state (the state machine refuses the others anyway).
  var ROOM_ACTIONS = {
    start: ['ready', 'running'], pause: ['running'], resume: ['paused'], extend: ['ready', 'running', 'paused'], end: ['ready', 'running', 'paused'],
  };

  function clockCell(td, seat) {
    td.textContent = '';
    var left = remaining(seat.clock);
    var t = el('span', 'time', hms(left));
    if (seat.state === 'running' && left < 600000) t.className += ' low';
    td.appendChild(t);
    if (seat.state === 'paused') bi(td.appendChild(el('span', 'tag paused')), '已暂停', 'paused');
    if (seat.clock.extendedMs !== 0) {
      var mins = Math.round(seat.clock.extendedMs / 60000);
      bi(td.appendChild(el('span', 'tag ext')), (mins > 0 ? '+' : '') + mins + ' 分钟', 'extended');
    }
  }

  function activityCell(td, seat) {
    td.textContent = '';
    if (!seat.lastActivity) { td.textContent = '—'; return; }
    var a = ago(seat.lastActivity);
    bi(td, a[0], a[1]);
  }

  function button(action, seat, zh, en, cls) {
    var b = el('button', cls || '');
    b.type = 'button';
    b.setAttribute('data-action', action);
    if (seat) b.setAttribute('data-seat', seat);
    return bi(b, zh, en);
  }

  function row(seat, roomState) {
    var tr = el('tr');
    tr.setAttribute('data-seat', seat.seat);
    tr.setAttribute('data-state', seat.state);
    tr.appendChild(el('td', 'seat-id', seat.seat));
    tr.appendChild(el('td', 'cand-no', seat.candidateNo));
    tr.appendChild(el('td', 'cand-name', seat.name));
    var st = bi(el('td', 'state st-' + seat.state), seat.stateZh, seat.state);
    if (seat.lastError) st.appendChild(el('div', 'err', seat.lastError));
    if (seat.disk && (seat.disk.level !== 'ok' || seat.disk.halted)) {
      // The disk watch's reading: near the quota, at it, or stopped (released with Resume).
      var mib = function (b) { return (b / 1048576).toFixed(0); };
      var d = el('div', 'disk disk-' + (seat.disk.halted ? 'halted' : seat.disk.level));
      d.setAttribute('data-disk-level', seat.disk.level);
      var use = mib(seat.disk.bytes) + '/' + mib(seat.disk.quotaBytes) + ' MiB';
      if (seat.disk.halted) bi(d, '磁盘 ' + use + '：进程已暂停', 'disk ' + use + ': processes stopped');
      else bi(d, '磁盘 ' + use + '：接近配额', 'disk ' + use + ': near its quota');
      st.appendChild(d);
    }
    tr.appendChild(st);

    var boxes = el('td', 'boxes');
    seat.sandboxes.forEach(function (b) {
      var s = el('span', 'box sb-' + b.state);
      s.setAttribute('data-task', b.task);
      s.title = b.running + '/' + b.containers;
      s.appendChild(document.createTextNode(b.task + ' '));
      bi(s, SANDBOX_ZH[b.state] || b.state, b.state);
      boxes.appendChild(s);
    });
    tr.appendChild(boxes);

    var clock = el('td', 'clock');
    clockCell(clock, seat);
    tr.appendChild(clock);

    var term = el('td', 'term ' + (seat.terminals > 0 ? 'on' : 'off'));
    if (seat.terminals > 0) bi(term, '已连接 ×' + seat.terminals, 'connected');
    else bi(term, '未连接', 'not connected');
    tr.appendChild(term);

    var act = el('td', 'activity');
    activityCell(act, seat);
    tr.appendChild(act);

    var g = el('td', 'grading');
    if (!seat.grading) g.textContent = '—';
    else {
      var gl = GRADING[seat.grading.status] || [seat.grading.status, seat.grading.status];
      bi(g, gl[0], gl[1]);
      g.appendChild(el('span', 'count', ' ' + seat.grading.done + (seat.grading.total === null ? '' : '/' + seat.grading.total)));
    }
    tr.appendChild(g);

    var sc = el('td', 'score');
    if (!seat.score) sc.textContent = '—';
    else {
      sc.appendChild(el('strong', '', seat.score.total.toFixed(1)));
      sc.appendChild(document.createTextNode(' '));
      if (seat.score.passed === true) bi(sc.appendChild(el('span', 'tag pass')), '合格', 'pass');
      else if (seat.score.passed === false) bi(sc.appendChild(el('span', 'tag fail')), '不合格', 'fail');
      else bi(sc.appendChild(el('span', 'tag')), '待定', 'pending');
    }
    tr.appendChild(sc);

    var actions = el('td', 'actions');
    if (seat.state === 'ready' && roomState === 'running') actions.appendChild(button('start', seat.seat, '开始', 'Start'));
    if (seat.state === 'running') actions.appendChild(button('pause', seat.seat, '暂停', 'Pause'));
    if (seat.state === 'paused') actions.appendChild(button('resume', seat.seat, '恢复', 'Resume'));
    if (WORKING[seat.state] || seat.state === 'frozen') actions.appendChild(button('extend', seat.seat, '延时', 'Extend'));
    if (WORKING[seat.state]) actions.appendChild(button('end', seat.seat, '收卷', 'End', 'danger'));
    tr.appendChild(actions);
    return tr;
  }

  function roomClock() {
    if (!snap) return;
    var best = null;
    snap.seats.forEach(function (s) {
      if (!WORKING[s.state]) return;
      var left = remaining(s.clock);
      if (best === null || left > best) best = left;
    });
    document.getElementById('room-clock').textContent = best === null ? '--:--:--' : hms(best);
  }

  function render(s) {
    snap = s;
    offset = s.serverNow - Date.now();
    var rs = document.getElementById('room-state');
    rs.setAttribute('data-state', s.session.state);
    rs.textContent = '';
    bi(rs, s.session.stateZh, s.session.state);
    document.querySelectorAll('.room-actions button[data-action]').forEach(function (b) {
      b.hidden = ROOM_ACTIONS[b.getAttribute('data-action')].indexOf(s.session.state) < 0;
    });
    document.getElementById('room-name').textContent = s.session.room;
    document.getElementById('room-duration').textContent = String(Math.round(s.session.durationMs / 60000));
    var counts = document.getElementById('room-counts');
    var connected = s.seats.filter(function (x) { return x.terminals > 0; }).length;
    counts.textContent = '';
    bi(counts, '考位 ' + s.seats.length + ' · 终端在线 ' + connected, s.seats.length + ' seats · ' + connected + ' connected');
    if (s.engine.error) counts.appendChild(el('span', 'err', ' ' + s.engine.error));
    if (s.clockJumps && s.clockJumps.length > 0) {
      var last = s.clockJumps[s.clockJumps.length - 1];
      var secs = (last.jumpMs / 1000).toFixed(1);
      var warn = el('span', 'err', ' ');
      bi(warn, '主机时钟跳变 ' + s.clockJumps.length + ' 次（最近 ' + secs + ' 秒），考生剩余时间已校正',
        'host clock jumped ' + s.clockJumps.length + ' time(s) (last ' + secs + ' s); candidates\' remaining time was kept');
      counts.appendChild(warn);
    }
    var rows = document.createDocumentFragment();
    rowsBySeat = {};
    s.seats.forEach(function (seat) { rows.appendChild(rowsBySeat[seat.seat] = row(seat, s.session.state)); });
    tbody.textContent = '';
    tbody.appendChild(rows);
    roomClock();
  }

  function tick() {
    if (!snap) return;
    snap.seats.forEach(function (seat) {
      var tr = rowsBySeat[seat.seat];
      if (!tr) return;
      clockCell(tr.querySelector('td.clock'), seat);
      activityCell(tr.querySelector('td.activity'), seat);
    });
    roomClock();
  }
  window.setInterval(tick, 1000);

  // ---- the event stream --------------------------------------------------------------------

  function connect() {
    es = new EventSource(base + '/events');
    es.addEventListener('snapshot', function (ev) {
      retries = 0;
      live('live', '实时', 'live');
      render(JSON.parse(ev.data));
    });
    es.addEventListener('problem', function (ev) {
      var p = JSON.parse(ev.data);
      say(p.message.zh, p.message.en, true);
    });
    es.onerror = function () {
      if (es.readyState !== EventSource.CLOSED) { live('reconnecting', '重新连接中…', 'reconnecting…'); return; }
      // The browser gave up (a refusal, not a dropped line): find out why before trying again.
      fetch(base + '/state', { credentials: 'same-origin' }).then(function (r) {
        if (r.status === 401) { live('offline', '登录已失效，请刷新页面重新登录', 'logged out; reload to log in'); return; }
        if (++retries > MAX_RETRIES) { live('offline', '连接中断，请刷新页面', 'disconnected; reload the page'); return; }
        live('reconnecting', '重新连接中…', 'reconnecting…');
        window.setTimeout(connect, 5000);
      }).catch(function () {
        if (++retries <= MAX_RETRIES) window.setTimeout(connect, 5000);
      });
    };
  }
  connect();
  // Leaving the page ends the stream now rather than when the server next writes.
  window.addEventListener('pagehide', function () { if (es) es.close(); });

  // ---- actions -----------------------------------------------------------------------------

  // What the first click of an End armed, by action and seat: the rows are redrawn from the
  // stream, so the button clicked the second time may be a new element.
  var armed = null;
  function send(b) {
    var body = { action: b.getAttribute('data-action') };
    if (b.getAttribute('data-seat')) body.seat = b.getAttribute('data-seat');
    if (body.action === 'extend') body.minutes = Math.max(1, Math.min(600, parseInt(minutesInput.value, 10) || 10));
    b.disabled = true;
    fetch(base + '/actions', {
      method: 'POST', credentials: 'same-origin', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
    }).then(function (r) {
      return r.json().then(function (j) { return { status: r.status, body: j }; });
    }).then(function (r) {
      if (r.status === 200) say(r.body.message.zh, r.body.message.en, false);
      else if (r.status === 401) say('登录已失效，请刷新页面重新登录。', 'Logged out; reload the page to log in.', true);
      else say(r.body.error.message.zh, r.body.error.message.en, true);
    }).catch(function () {
      say('请求失败，请重试。', 'The request failed; try again.', true);
    }).then(function () { b.disabled = false; });
  }

  document.addEventListener('click', function (ev) {
    var b = ev.target.closest ? ev.target.closest('button[data-action]') : null;
    if (!b || b.disabled) return;
    var key = b.getAttribute('data-action') + ':' + (b.getAttribute('data-seat') || '');
    if (b.getAttribute('data-action') === 'end' && armed !== key) {
      // Ending freezes seats: a second click within five seconds confirms.
      armed = key;
      b.classList.add('armed');
      var one = b.getAttribute('data-seat');
      if (one) say('再次点击“收卷”确认：考位 ' + one + ' 将被冻结。', 'Click “End” again to confirm: seat ' + one + ' will be frozen.', true);
      else say('再次点击“结束考试”确认：所有考位将被冻结。', 'Click “End exam” again to confirm: every seat will be frozen.', true);
      window.setTimeout(function () { if (armed === key) { armed = null; b.classList.remove('armed'); } }, 5000);
      return;
    }
    armed = null;
    b.classList.remove('armed');
    send(b);
  });
})();
