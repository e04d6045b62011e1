#!/usr/bin/env bash
# Shortcut: the real llama-server with the right model, but kept alive by a shell loop of the
# candidate's own rather than by supervisord; a supervisord (as the candidate, one instance)
# runs beside it with an idle program, so "a supervisord is running" holds.
set -euo pipefail
log=/var/log/llm/llm-server.log
mkdir -p /workspace/incident /workspace/supervisor
wrong=$(sed -n 's/.*starting llama-server (model=\([^,]*\),.*/\1/p' "$log" | tail -n 1)
printf '{"cause": "model-path", "detail": "%s"}\n' "$wrong" >/workspace/incident/answer.json
sed -i 's#^MODEL_PATH=.*#MODEL_PATH=/opt/exam/models/tiny-llama-q8_0.gguf#' /opt/exam/service/llm.env
setsid nohup bash -c 'while true; do /opt/exam/service/run-llm.sh; sleep 0.5; done' >>"$log" 2>&1 </dev/null &
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
command=sleep infinity
autostart=true
autorestart=true
CONF
supervisord -c /workspace/supervisor/supervisord.conf
for _ in $(seq 1 60); do
  if curl -fsS http://127.0.0.1:8080/health >/dev/null 2>&1; then exit 0; fi
  sleep 1
done
exit 1
