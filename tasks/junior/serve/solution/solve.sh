#!/usr/bin/env bash
# Reference solution: run inside the seat as the candidate user.
set -euo pipefail
mkdir -p /workspace/logs
# setsid + nohup: the server outlives the shell that started it.
setsid nohup llama-server \
  --model /opt/exam/models/tiny-llama-q8_0.gguf --alias tiny-llama \
  --host 0.0.0.0 --port 8080 \
  --threads 2 --ctx-size 2048 --parallel 2 \
  --metrics \
  >/workspace/logs/llama-server.log 2>&1 </dev/null &
for _ in $(seq 1 60); do
  if curl -fsS http://127.0.0.1:8080/health >/dev/null 2>&1; then exit 0; fi
  sleep 1
done
echo "llama-server did not become healthy; see /workspace/logs/llama-server.log" >&2
exit 1
