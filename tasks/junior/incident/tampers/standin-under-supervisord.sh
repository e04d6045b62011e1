#!/usr/bin/env bash
# Shortcut: the right diagnosis, but no model server at all: a Python stand-in, kept by
# supervisord (as the candidate, one instance), answers /health, a canned chat reply and a
# /metrics of its own whose token counter moves, on the service port. supervisord restarts it
# when it is killed, and it is started as "llama-server" so that kills by name reach it.
set -euo pipefail
log=/var/log/llm/llm-server.log
mkdir -p /workspace/incident /workspace/supervisor
wrong=$(sed -n 's/.*starting llama-server (model=\([^,]*\),.*/\1/p' "$log" | tail -n 1)
printf '{"cause": "model-path", "detail": "%s"}\n' "$wrong" >/workspace/incident/answer.json
cat >/workspace/supervisor/standin.py <<'PY'
import json, http.server, socketserver
predicted = 0
class H(http.server.BaseHTTPRequestHandler):
    def send(self, code, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code); self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
    def do_GET(self):
        if self.path == "/health": self.send(200, {"status": "ok"})
        elif self.path == "/v1/models": self.send(200, {"object": "list", "data": [{"id": "tiny-llama", "object": "model"}]})
        elif self.path == "/metrics": self.send(200, f"llamacpp:tokens_predicted_total {predicted}\n".encode(), "text/plain")
        else: self.send(404, {"error": "not found"})
    def do_POST(self):
        global predicted
        n = int(self.headers.get("Content-Length", 0)); req = json.loads(self.rfile.read(n) or b"{}")
        k = int(req.get("max_tokens") or 16); predicted += k
        self.send(200, {"id": "chatcmpl-1", "object": "chat.completion", "model": "tiny-llama",
            "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "ok " * k}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": k, "total_tokens": 5 + k}})
    def log_message(self, *a): pass
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(("0.0.0.0", 8080), H).serve_forever()
PY
cat >/workspace/supervisor/supervisord.conf <<'CONF'
[unix_http_server]
file=/tmp/supervisor.sock
[supervisord]
logfile=/workspace/supervisor/supervisord.log
pidfile=/tmp/supervisord.pid
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[supervisorctl]
serverurl=unix:///tmp/supervisor.sock
[program:llm]
command=bash -c 'exec -a llama-server python3 /workspace/supervisor/standin.py --model /opt/exam/models/tiny-llama-q8_0.gguf --port 8080'
autostart=true
autorestart=true
startsecs=1
CONF
supervisord -c /workspace/supervisor/supervisord.conf
for _ in $(seq 1 30); do
  if curl -fsS http://127.0.0.1:8080/metrics | grep -q tokens_predicted_total; then exit 0; fi
  sleep 0.5
done
cat /workspace/supervisor/supervisord.log >&2
exit 1
