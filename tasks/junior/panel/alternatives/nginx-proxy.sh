#!/usr/bin/env bash
# Correct but different: the Composition API with one reactive object and a computed check, nginx
# (as the candidate, its own config and temp paths) serving the page and proxying /v1/ to the
# model server on 8081, so the page calls its own origin.
set -euo pipefail
W=/workspace/nginx-panel
mkdir -p $W/html $W/tmp $W/logs
cp /opt/exam/panel/vue.global.prod.js $W/html/
cat >$W/nginx.conf <<CONF
worker_processes 1;
pid $W/nginx.pid;
error_log $W/logs/error.log;
events { worker_connections 64; }
http {
  include /etc/nginx/mime.types;
  access_log $W/logs/access.log;
  client_body_temp_path $W/tmp/body;
  proxy_temp_path $W/tmp/proxy;
  fastcgi_temp_path $W/tmp/fastcgi;
  uwsgi_temp_path $W/tmp/uwsgi;
  scgi_temp_path $W/tmp/scgi;
  server {
    listen 8080;
    root $W/html;
    location /v1/ {
      proxy_pass http://127.0.0.1:8081;
      proxy_read_timeout 120s;
    }
  }
}
CONF
cat >$W/html/index.html <<'HTML'
<!doctype html>
<html lang="zh-CN">
<head><meta charset="utf-8"><title>LLM 参数</title></head>
<body>
  <section id="root"></section>
  <script src="/vue.global.prod.js"></script>
  <script src="/main.js"></script>
</body>
</html>
HTML
cat >$W/html/main.js <<'JS'
const { createApp, reactive, computed } = Vue;
createApp({
  template: `
    <form @submit.prevent="submit">
      <p><label>temperature <input data-testid="temperature" type="number" step="any" v-model.number="form.temperature"></label></p>
      <p><label>top_p <input data-testid="top-p" type="number" step="any" v-model.number="form.topP"></label></p>
      <p><label>max_tokens <input data-testid="max-tokens" type="number" v-model.number="form.maxTokens"></label></p>
      <p><textarea data-testid="prompt" v-model="form.prompt"></textarea></p>
      <p><button data-testid="send" type="submit">发送</button></p>
      <p data-testid="error">{{ state.error }}</p>
      <p data-testid="output">{{ state.reply }}</p>
    </form>`,
  setup() {
    const form = reactive({ temperature: 0.7, topP: 0.9, maxTokens: 64, prompt: '' });
    const state = reactive({ reply: '', error: '' });
    const problem = computed(() => {
      const t = form.temperature, p = form.topP, m = form.maxTokens;
      if (typeof t !== 'number' || t < 0 || t > 2) return 'temperature 应在 [0, 2]';
      if (typeof p !== 'number' || p < 0 || p > 1) return 'top_p 应在 [0, 1]';
      if (!Number.isInteger(m) || m < 1 || m > 256) return 'max_tokens 应为 [1, 256] 的整数';
      return '';
    });
    async function submit() {
      state.error = problem.value;
      if (state.error) return;
      const r = await fetch('/v1/chat/completions', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ model: 'tiny-llama', messages: [{ role: 'user', content: form.prompt }], temperature: form.temperature, top_p: form.topP, max_tokens: form.maxTokens }),
      });
      if (!r.ok) { state.error = `HTTP ${r.status}`; return; }
      state.reply = (await r.json()).choices[0].message.content;
    }
    return { form, state, submit };
  },
}).mount('#root');
JS
nginx -t -c $W/nginx.conf -e $W/logs/error.log
nginx -c $W/nginx.conf -e $W/logs/error.log
for _ in $(seq 1 30); do curl -fsS http://127.0.0.1:8080/ >/dev/null 2>&1 && exit 0; sleep 1; done
exit 1
