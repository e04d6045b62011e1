#!/usr/bin/env bash
# Another correct way: the answer pretty-printed with its keys in the other order; the
# configuration rewritten whole; supervisord run in the foreground (nodaemon) from a config under
# ~/.config with another program name and a shell that execs the start script.
set -euo pipefail
log=/var/log/llm/llm-server.log
mkdir -p /workspace/incident "$HOME/.config/supervisor"
path=$(grep -o "/opt/exam/models/[^ ,']*\.gguf" "$log" | grep -v q8_0 | tail -n 1)
grep -q "failed to load model" "$log"
printf '{\n  "detail": "%s",\n  "cause": "model-path"\n}\n' "$path" >/workspace/incident/answer.json
env=/opt/exam/service/llm.env
awk -F= -v OFS== '$1 == "MODEL_PATH" { $2 = "/opt/exam/models/tiny-llama-q8_0.gguf" } { print }' "$env" >"$env.new"
cat "$env.new" >"$env" && rm -f "$env.new"
cat >"$HOME/.config/supervisor/llm.conf" <<CONF
[unix_http_server]
file=$HOME/.config/supervisor/sock

[supervisord]
nodaemon=true
logfile=$HOME/.config/supervisor/supervisord.log
pidfile=$HOME/.config/supervisor/supervisord.pid

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://$HOME/.config/supervisor/sock

[program:tiny-llama-api]
command=/bin/sh -c "exec /opt/exam/service/run-llm.sh"
autorestart=unexpected
startretries=10
stdout_logfile=$HOME/.config/supervisor/api.log
redirect_stderr=true
CONF
setsid nohup supervisord -c "$HOME/.config/supervisor/llm.conf" >/dev/null 2>&1 </dev/null &
for _ in $(seq 1 60); do
  if curl -fsS http://127.0.0.1:8080/health >/dev/null 2>&1; then exit 0; fi
  sleep 1
done
cat "$HOME/.config/supervisor/supervisord.log" >&2
exit 1
