#!/usr/bin/env bash
# Shortcut: the service is restored properly, but the diagnosis is a guess: the answer's own cause
# is wrong, and beside it the file lists every category with every value found in the log, so a
# check that looks for the right text anywhere in the file finds it.
set -euo pipefail
log=/var/log/llm/llm-server.log
mkdir -p /workspace/incident /workspace/supervisor
python3 - "$log" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
paths = sorted(set(re.findall(r"/opt/exam/models/[\w.-]+\.gguf", text)))
ports = sorted(set(re.findall(r"port=(\d+)", text)))
cats = ["model-path", "port-in-use", "out-of-memory", "permission-denied", "bad-argument"]
answer = {"cause": "port-in-use", "detail": ports[0] if ports else "8080",
          "candidates": [{"cause": c, "detail": v} for c in cats for v in paths + ports]}
json.dump(answer, open("/workspace/incident/answer.json", "w"), indent=1)
PY
sed -i 's#^MODEL_PATH=.*#MODEL_PATH=/opt/exam/models/tiny-llama-q8_0.gguf#' /opt/exam/service/llm.env
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
command=/opt/exam/service/run-llm.sh
autostart=true
autorestart=true
startsecs=2
stdout_logfile=/var/log/llm/llm-server.log
redirect_stderr=true
CONF
supervisord -c /workspace/supervisor/supervisord.conf
grep -q '"detail": "/opt/exam/models/tiny-llama-q4_0.gguf"' /workspace/incident/answer.json
for _ in $(seq 1 60); do
  if curl -fsS http://127.0.0.1:8080/health >/dev/null 2>&1; then exit 0; fi
  sleep 1
done
exit 1
