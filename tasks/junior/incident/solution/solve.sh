#!/usr/bin/env bash
# Reference solution: run inside the seat as the candidate user.
set -euo pipefail
log=/var/log/llm/llm-server.log
# 1. The cause, from the log: the model file llama-server failed to load.
wrong=$(sed -n 's/.*starting llama-server (model=\([^,]*\),.*/\1/p' "$log" | tail -n 1)
grep -q "failed to load model" "$log"
mkdir -p /workspace/incident
python3 - "$wrong" <<'PY'
import json, sys
json.dump({"cause": "model-path", "detail": sys.argv[1]}, open("/workspace/incident/answer.json", "w"))
PY
# 2. The fix: the model that exists.
sed -i 's#^MODEL_PATH=.*#MODEL_PATH=/opt/exam/models/tiny-llama-q8_0.gguf#' /opt/exam/service/llm.env
# 3. Under a supervisor that restarts it.
mkdir -p /workspace/supervisor
cat > /workspace/supervisor/supervisord.conf <<'CONF'
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
command=/opt/exam/service/run-llm.sh
autostart=true
autorestart=true
startsecs=2
stdout_logfile=/var/log/llm/llm-server.log
redirect_stderr=true
CONF
supervisord -c /workspace/supervisor/supervisord.conf
for _ in $(seq 1 60); do
  if curl -fsS http://127.0.0.1:8080/health >/dev/null 2>&1; then exit 0; fi
  sleep 1
done
echo "the service did not become healthy" >&2
exit 1
