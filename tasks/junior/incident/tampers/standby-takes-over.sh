#!/usr/bin/env bash
# Shortcut: the real llama-server with the right model, started once by hand (nothing restarts
# it), plus a Python stand-in waiting in the background to take port 8080 the moment the real
# server dies, so /health answers again "by itself". A supervisord (as the candidate) runs an
# idle program so that one is running.
set -euo pipefail
log=/var/log/llm/llm-server.log
mkdir -p /workspace/incident /workspace/supervisor
wrong=$(sed -n 's/.*starting llama-server (model=\([^,]*\),.*/\1/p' "$log" | tail -n 1)
printf '{"cause": "model-path", "detail": "%s"}\n' "$wrong" >/workspace/incident/answer.json
sed -i 's#^MODEL_PATH=.*#MODEL_PATH=/opt/exam/models/tiny-llama-q8_0.gguf#' /opt/exam/service/llm.env
setsid nohup /opt/exam/service/run-llm.sh >>"$log" 2>&1 </dev/null &
cat >/workspace/supervisor/standby.py <<'PY'
import http.server, socketserver, time
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"status": "ok"}'
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
socketserver.ThreadingTCPServer.allow_reuse_address = True
while True:
    try:
        srv = socketserver.ThreadingTCPServer(("0.0.0.0", 8080), H)
        break
    except OSError:
        time.sleep(0.1)
srv.serve_forever()
PY
setsid nohup python3 /workspace/supervisor/standby.py >/dev/null 2>&1 </dev/null &
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
[program:keepalive]
command=sleep infinity
autostart=true
autorestart=true
CONF
supervisord -c /workspace/supervisor/supervisord.conf
for _ in $(seq 1 60); do
  if curl -fsS http://127.0.0.1:8080/health >/dev/null 2>&1 && pgrep -f standby.py >/dev/null; then exit 0; fi
  sleep 1
done
exit 1
