#!/usr/bin/env bash
# Another correct tuning: supervisord (the candidate's own instance) runs the service, every
# setting given as a LLAMA_ARG_* environment variable rather than a flag; 3584 tokens of context
# (896 per slot, enough for the 817-token longest request), other batch sizes.
set -euo pipefail
cd /workspace/tune
mkdir -p /workspace/tune/supervisor
cat >/workspace/tune/supervisor/supervisord.conf <<'CONF'
[supervisord]
nodaemon=false
logfile=/workspace/tune/supervisor/supervisord.log
pidfile=/workspace/tune/supervisor/supervisord.pid

[unix_http_server]
file=/workspace/tune/supervisor/supervisor.sock

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix:///workspace/tune/supervisor/supervisor.sock

[program:llm]
command=/usr/local/bin/llama-server -m /opt/models/tiny-llama-f16.gguf --alias tiny-llama --host 0.0.0.0 --port 8080 --metrics
environment=LLAMA_ARG_THREADS="2",LLAMA_ARG_N_PARALLEL="4",LLAMA_ARG_CTX_SIZE="3584",LLAMA_ARG_BATCH="1024",LLAMA_ARG_UBATCH="256"
autorestart=true
startsecs=2
stdout_logfile=/workspace/tune/supervisor/llm.log
redirect_stderr=true
CONF
pkill -x llama-server || true
for _ in $(seq 1 40); do pgrep -x llama-server >/dev/null || break; sleep 0.25; done
supervisord -c /workspace/tune/supervisor/supervisord.conf
for _ in $(seq 1 60); do
  if curl -fsS http://127.0.0.1:8080/props 2>/dev/null | grep -q '"total_slots":4'; then exit 0; fi
  sleep 0.5
done
cat /workspace/tune/supervisor/llm.log >&2
exit 1
