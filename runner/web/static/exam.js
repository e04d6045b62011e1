/* global document, window, location, Terminal, FitAddon */
// The candidate's exam page: task tabs, the zh/en toggle, the clock and the terminal.
(function () {
  'use strict';
  var body = document.body;
  if (!body.classList.contains('exam')) return;

  // Task tabs.
  document.querySelectorAll('.tab').forEach(function (tab) {
    tab.addEventListener('click', function () {
      var id = tab.getAttribute('data-task');
      document.querySelectorAll('.tab').forEach(function (t) { t.classList.toggle('active', t === tab); });
      document.querySelectorAll('.sheet').forEach(function (s) { s.classList.toggle('active', s.getAttribute('data-task') === id); });
    });
  });
  // Chinese / English toggle per sheet.
  document.querySelectorAll('.sheet').forEach(function (sheet) {
    sheet.querySelectorAll('.lang-toggle button').forEach(function (b) {
      b.addEventListener('click', function () {
        var en = b.getAttribute('data-lang') === 'en';
        sheet.querySelector('.md.zh').hidden = en;
        sheet.querySelector('.md.en-sheet').hidden = !en;
        sheet.querySelectorAll('.lang-toggle button').forEach(function (x) { x.classList.toggle('on', x === b); });
      });
    });
  });

  var banner = document.getElementById('frozen-banner');
  function say(el, zh, en, isError) {
    el.textContent = '';
    el.appendChild(document.createTextNode(zh + ' '));
    var s = document.createElement('span');
    s.className = 'en';
    s.lang = 'en';
    s.textContent = en;
    el.appendChild(s);
    el.classList.toggle('error', Boolean(isError));
  }

  // Clock: remaining time against the server's clock, not the browser's.
  var endsAt = body.getAttribute('data-ends-at') ? Date.parse(body.getAttribute('data-ends-at')) : null;
  var offset = Date.parse(body.getAttribute('data-now')) - Date.now();
  var clock = document.getElementById('clock');
  function pad(n) { return (n < 10 ? '0' : '') + n; }
  function tick() {
    if (endsAt === null) return;
    var left = Math.max(0, Math.floor((endsAt - (Date.now() + offset)) / 1000));
    clock.textContent = pad(Math.floor(left / 3600)) + ':' + pad(Math.floor(left / 60) % 60) + ':' + pad(left % 60);
    clock.classList.toggle('low', left < 600);
  }
  tick();
  window.setInterval(tick, 1000);
  window.setInterval(function () {
    fetch('/api/candidate/state', { credentials: 'same-origin' }).then(function (r) {
      if (r.status === 401) { location.href = '/'; return null; }
      return r.ok ? r.json() : null;
    }).then(function (s) {
      if (!s) return;
      endsAt = s.endsAt ? Date.parse(s.endsAt) : null;
      offset = Date.parse(s.now) - Date.now();
      if (s.closed) showClosed(s.closed);
      showDisk(s.disk);
    }).catch(function () { /* the next poll tries again */ });
  }, 15000);

  // The runner's disk watch: near the quota, or the seat's processes stopped at it. Said above the
  // terminals and, once per change, in every open terminal.
  var diskLevel = 'ok';
  function showDisk(d) {
    var level = !d ? 'ok' : d.halted ? 'halted' : d.level;
    var notice = document.getElementById('disk-notice');
    if (level === 'ok') { if (notice) notice.hidden = true; diskLevel = level; return; }
    if (!notice) {
      notice = document.createElement('div');
      notice.id = 'disk-notice';
      notice.className = 'disk-notice';
      banner.parentNode.insertBefore(notice, banner.nextSibling);
    }
    notice.hidden = false;
    var use = (d.bytes / 1048576).toFixed(0) + ' / ' + (d.quotaBytes / 1048576).toFixed(0) + ' MiB';
    var zh = level === 'halted' ? '磁盘已达配额（' + use + '），考位的所有进程已暂停，请举手联系考官。'
      : '磁盘用量 ' + use + '，接近配额：请删除不需要的文件，达到配额时考位的所有进程将被暂停。';
    var en = level === 'halted' ? 'The disk quota is reached (' + use + '): every process of your seat is stopped; ask the examiner.'
      : 'Disk use ' + use + ' is near the quota: delete files you do not need; at the quota every process of your seat is stopped.';
    say(notice, zh, en, true);
    if (level !== diskLevel && terminals) {
      Object.keys(terminals).forEach(function (k) { terminals[k].term.write('\r\n\x1b[1;33m[deploylab] ' + zh + '\r\n' + en + '\x1b[0m\r\n'); });
    }
    diskLevel = level;
  }

  // Access closed by a freeze or a pause: say which, in both languages.
  function showClosed(reason) {
    body.classList.add('frozen');
    banner.hidden = false;
    banner.querySelectorAll('[data-reason]').forEach(function (el) { el.hidden = el.getAttribute('data-reason') !== reason; });
  }

  if (body.getAttribute('data-frozen')) return;

  // One terminal per task, each into that task's own sandbox, connected when its tab is first shown.
  var seat = body.getAttribute('data-seat');
  var terminals = {};
  window.deploylabTerminals = terminals; // for examiners' debugging and the browser test

  function connect(box) {
    var task = box.getAttribute('data-task');
    var status = box.querySelector('.term-status');
    var term = new Terminal({ cursorBlink: true, fontSize: 14, scrollback: 5000,
      fontFamily: '"DejaVu Sans Mono", "Noto Sans Mono CJK SC", monospace' });
    var fit = new FitAddon.FitAddon();
    term.loadAddon(fit);
    term.open(box.querySelector('.term-screen'));
    fit.fit();
    terminals[task] = { term: term, fit: fit };
    var proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    var ws = new WebSocket(proto + '//' + location.host + '/ws/seats/' + encodeURIComponent(seat) + '/tasks/' +
      encodeURIComponent(task) + '/terminal?cols=' + term.cols + '&rows=' + term.rows);
    ws.binaryType = 'arraybuffer';
    var closedBy = null;
    ws.onmessage = function (ev) {
      if (typeof ev.data !== 'string') { term.write(new Uint8Array(ev.data)); return; }
      var m = JSON.parse(ev.data);
      if (m.t === 'open') { status.textContent = ''; status.classList.remove('error'); term.focus(); }
      if (m.t === 'closed') {
        closedBy = m;
        say(status, m.message.zh, m.message.en, true);
        if (m.reason === 'frozen' || m.reason === 'paused') showClosed(m.reason);
      }
    };
    ws.onclose = function () {
      if (!closedBy) say(status, '终端连接已断开，请刷新页面。', 'The terminal connection was lost; reload the page.', true);
      term.options.disableStdin = true;
    };
    term.onData(function (d) { if (ws.readyState === 1) ws.send(JSON.stringify({ t: 'in', d: d })); });
    term.onResize(function (size) { if (ws.readyState === 1) ws.send(JSON.stringify({ t: 'resize', cols: size.cols, rows: size.rows })); });
  }

  function showTerminal(task) {
    document.querySelectorAll('.term').forEach(function (box) {
      var on = box.getAttribute('data-task') === task;
      box.classList.toggle('active', on);
      if (!on) return;
      if (!terminals[task]) connect(box);
      else { terminals[task].fit.fit(); terminals[task].term.focus(); }
    });
  }
  document.querySelectorAll('.tab').forEach(function (tab) {
    tab.addEventListener('click', function () { showTerminal(tab.getAttribute('data-task')); });
  });
  var first = document.querySelector('.tab.active');
  if (first) showTerminal(first.getAttribute('data-task'));
  window.addEventListener('resize', function () {
    Object.keys(terminals).forEach(function (k) { terminals[k].fit.fit(); });
  });
})();
