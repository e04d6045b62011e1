#!/usr/bin/env bash
# Correct but different: the Options API, range sliders (step 0.01) for temperature and top_p, a
# number input for max_tokens, the template in the HTML; python's http.server serves it and the
# page calls the model server on 8081 directly (CORS).
set -euo pipefail
mkdir -p /workspace/site /workspace/logs
cp /opt/exam/panel/vue.global.prod.js /workspace/site/vue.js
cat >/workspace/site/index.html <<'HTML'
<!doctype html>
<html lang="zh-CN">
<head><meta charset="utf-8"><title>参数面板</title></head>
<body>
  <main id="panel">
    <div>temperature: <input data-testid="temperature" type="range" min="0" max="2" step="0.01" v-model.number="params.temperature"> {{ params.temperature }}</div>
    <div>top_p: <input data-testid="top-p" type="range" min="0" max="1" step="0.01" v-model.number="params.top_p"> {{ params.top_p }}</div>
    <div>max_tokens: <input data-testid="max-tokens" type="number" v-model.number="params.max_tokens"></div>
    <div><textarea data-testid="prompt" v-model="question" placeholder="输入问题"></textarea></div>
    <button data-testid="send" @click="ask">提交</button>
    <div data-testid="error" style="color:red">{{ problem }}</div>
    <div data-testid="output">{{ answer }}</div>
  </main>
  <script src="./vue.js"></script>
  <script>
    Vue.createApp({
      data() {
        return { params: { temperature: 0.7, top_p: 0.9, max_tokens: 64 }, question: '', answer: '', problem: '' };
      },
      methods: {
        valid() {
          const { temperature, top_p, max_tokens } = this.params;
          if (!(temperature >= 0 && temperature <= 2)) return 'temperature 超出 0–2';
          if (!(top_p >= 0 && top_p <= 1)) return 'top_p 超出 0–1';
          if (!(Number.isInteger(max_tokens) && max_tokens >= 1 && max_tokens <= 256)) return 'max_tokens 须为 1–256 的整数';
          return '';
        },
        ask() {
          this.problem = this.valid();
          if (this.problem) return;
          const xhr = new XMLHttpRequest();
          xhr.open('POST', 'http://127.0.0.1:8081/v1/chat/completions');
          xhr.setRequestHeader('Content-Type', 'application/json');
          xhr.onload = () => {
            try {
              this.answer = JSON.parse(xhr.responseText).choices[0].message.content;
            } catch (e) {
              this.problem = '回答无法解析：' + xhr.status;
            }
          };
          xhr.onerror = () => { this.problem = '请求失败'; };
          xhr.send(JSON.stringify({ ...this.params, messages: [{ role: 'user', content: this.question }] }));
        },
      },
    }).mount('#panel');
  </script>
</body>
</html>
HTML
cd /workspace/site
setsid nohup python3 -m http.server 8080 >/workspace/logs/site.log 2>&1 </dev/null &
for _ in $(seq 1 30); do curl -fsS http://127.0.0.1:8080/ >/dev/null 2>&1 && exit 0; sleep 1; done
exit 1
