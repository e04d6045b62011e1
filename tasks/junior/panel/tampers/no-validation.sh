#!/usr/bin/env bash
# Shortcut: a real Vue page without range checks: out-of-range values are sent as they are.
set -euo pipefail
mkdir -p /workspace/panel /workspace/logs
cp /opt/exam/panel/vue.global.prod.js /workspace/panel/
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
  <script src="vue.global.prod.js"></script>
  <script src="app.js"></script>
</body>
</html>
HTML
cat >/workspace/panel/app.js <<'JS'
const { createApp, ref } = Vue;
const bad = (v, lo, hi) => typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi;
createApp({
  setup() {
    const temperature = ref(0.7), topP = ref(0.9), maxTokens = ref(64), prompt = ref('');
    const output = ref(''), error = ref('');
    let first = null;
    async function send() {
      error.value = '';

      try {
        const res = await fetch('http://127.0.0.1:8081/v1/chat/completions', {
          method: 'POST', headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ messages: [{ role: 'user', content: prompt.value }], temperature: temperature.value, top_p: topP.value, max_tokens: maxTokens.value }),
        });
        const data = await res.json();
        const content = data.choices[0].message.content;
        output.value = content;
      } catch (e) { error.value = '请求失败 ' + e.message; }
    }
    return { temperature, topP, maxTokens, prompt, output, error, send };
  },
}).mount('#app');
JS
setsid nohup python3 -m http.server 8080 --bind 0.0.0.0 --directory /workspace/panel \
  >/workspace/logs/panel.log 2>&1 </dev/null &
for _ in $(seq 1 30); do curl -fsS http://127.0.0.1:8080/ >/dev/null 2>&1 && exit 0; sleep 1; done
exit 1
