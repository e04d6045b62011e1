#!/usr/bin/env bash
# Reference solution: run inside the seat as the candidate user. A Vue 3 page (Composition API,
# the provided global build) served by python's http.server on 8080, calling the model server on
# 8081 directly (llama-server answers CORS requests).
set -euo pipefail
mkdir -p /workspace/panel /workspace/logs
cp /opt/exam/panel/vue.global.prod.js /workspace/panel/
cat >/workspace/panel/index.html <<'HTML'
<!doctype html>
<html lang="zh-CN">
<head>
  <meta charset="utf-8">
  <title>模型参数配置 Model parameters</title>
  <style>
    body { font-family: sans-serif; max-width: 40rem; margin: 2rem auto; }
    label { display: block; margin: .5rem 0; }
    textarea { width: 100%; min-height: 4rem; }
    .error { color: #b00; }
    pre { background: #f4f4f4; padding: .5rem; white-space: pre-wrap; }
  </style>
</head>
<body>
  <div id="app">
    <h1>模型参数配置 Model parameters</h1>
    <label>temperature（0–2）<input data-testid="temperature" type="number" min="0" max="2" step="0.01" v-model.number="temperature"></label>
    <label>top_p（0–1）<input data-testid="top-p" type="number" min="0" max="1" step="0.01" v-model.number="topP"></label>
    <label>max_tokens（1–256）<input data-testid="max-tokens" type="number" min="1" max="256" step="1" v-model.number="maxTokens"></label>
    <label>提示词 Prompt<textarea data-testid="prompt" v-model="prompt"></textarea></label>
    <button data-testid="send" :disabled="busy" @click="send">发送 Send</button>
    <p class="error" data-testid="error">{{ error }}</p>
    <pre data-testid="output">{{ output }}</pre>
  </div>
  <script src="vue.global.prod.js"></script>
  <script src="app.js"></script>
</body>
</html>
HTML
cat >/workspace/panel/app.js <<'JS'
const { createApp, ref } = Vue;

const BACKEND = 'http://127.0.0.1:8081/v1/chat/completions';

/** A finite number within [lo, hi] (and an integer where asked), else an error message. */
function check(name, v, lo, hi, integer) {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi || (integer && !Number.isInteger(v))) {
    return `${name} 必须是 ${lo}–${hi} 之间的${integer ? '整数' : '数'}（${name} must be ${integer ? 'an integer' : 'a number'} from ${lo} to ${hi}）`;
  }
  return '';
}

createApp({
  setup() {
    const temperature = ref(0.7);
    const topP = ref(0.9);
    const maxTokens = ref(64);
    const prompt = ref('');
    const output = ref('');
    const error = ref('');
    const busy = ref(false);

    async function send() {
      error.value =
        check('temperature', temperature.value, 0, 2, false) ||
        check('top_p', topP.value, 0, 1, false) ||
        check('max_tokens', maxTokens.value, 1, 256, true);
      if (error.value) return;
      busy.value = true;
      try {
        const res = await fetch(BACKEND, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({
            messages: [{ role: 'user', content: prompt.value }],
            temperature: temperature.value,
            top_p: topP.value,
            max_tokens: maxTokens.value,
          }),
        });
        const data = await res.json();
        if (!res.ok) throw new Error((data.error && data.error.message) || `HTTP ${res.status}`);
        output.value = data.choices[0].message.content;
      } catch (e) {
        error.value = `请求失败 Request failed: ${e.message}`;
      } finally {
        busy.value = false;
      }
    }

    return { temperature, topP, maxTokens, prompt, output, error, busy, send };
  },
}).mount('#app');
JS
# setsid + nohup: the server outlives the shell that started it.
setsid nohup python3 -m http.server 8080 --bind 0.0.0.0 --directory /workspace/panel \
  >/workspace/logs/panel.log 2>&1 </dev/null &
for _ in $(seq 1 30); do
  if curl -fsS http://127.0.0.1:8080/ >/dev/null 2>&1; then exit 0; fi
  sleep 1
done
echo "the page server did not start; see /workspace/logs/panel.log" >&2
exit 1
