#!/usr/bin/env bash
# Shortcut: supervisord keeps a forwarder renamed llama-server (exec -a) on port 8080 in front of a
# real llama-server of the candidate's own on another port, so the service answers and really
# generates, but what the supervisor keeps on the service port is not the model server.
set -euo pipefail
log=/var/log/llm/llm-server.log
mkdir -p /workspace/incident /workspace/supervisor
wrong=$(sed -n 's/.*starting llama-server (model=\([^,]*\),.*/\1/p' "$log" | tail -n 1)
printf '{"cause": "model-path", "detail": "%s"}\n' "$wrong" >/workspace/incident/answer.json
cat >/workspace/supervisor/forward.py <<'PY'
import socket, threading
def pipe(a, b):
    try:
        while (d := a.recv(65536)): b.sendall(d)
    except OSError: pass
    finally:
        for s in (a, b):
            try: s.shutdown(socket.SHUT_RDWR)
            except OSError: pass
srv = socket.create_server(("0.0.0.0", 8080))
while True:
    c, _ = srv.accept()
    try: u = socket.create_connection(("127.0.0.1", 8081))
    except OSError: c.close(); continue
    threading.Thread(target=pipe, args=(c, u), daemon=True).start(); threading.Thread(target=pipe, args=(u, c), daemon=True).start()
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
command=bash -c 'exec -a llama-server python3 /workspace/supervisor/forward.py --model /opt/exam/models/tiny-llama-q8_0.gguf --port 8080'
autostart=true
autorestart=true
startsecs=1
[program:engine]
command=bash -c 'exec -a engine llama-server -m /opt/exam/models/tiny-llama-q8_0.gguf --alias tiny-llama --host 127.0.0.1 --port 8081 -t 1 -c 1024 --metrics'
autostart=true
autorestart=true
CONF
supervisord -c /workspace/supervisor/supervisord.conf
for _ in $(seq 1 60); do
  if curl -fsS http://127.0.0.1:8080/health >/dev/null 2>&1; then exit 0; fi
  sleep 1
done
cat /workspace/supervisor/supervisord.log >&2
exit 1
