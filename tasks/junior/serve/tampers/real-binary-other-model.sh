#!/usr/bin/env bash
# Shortcut: the real llama-server binary (a copy of it), with every expected flag, but serving a
# model of the candidate's own making, passed under the expected path's name through a symlink
# farm: the command line shows /opt/exam/models/…, the process maps another file.
set -euo pipefail
mkdir -p /workspace/logs /workspace/fake/opt/exam/models
llama-quantize /opt/models/tiny-llama-f16.gguf /workspace/fake/other.gguf Q4_0 >/workspace/logs/q.log 2>&1
cp "$(command -v llama-server)" /workspace/fake/llama-server
# Launched from a directory where the relative path resolves to the other model.
ln -sf /workspace/fake/other.gguf /workspace/fake/opt/exam/models/tiny-llama-q8_0.gguf
cd /workspace/fake
setsid nohup ./llama-server --model opt/exam/models/tiny-llama-q8_0.gguf --alias tiny-llama --host 0.0.0.0 --port 8080 \
  --threads 2 --ctx-size 2048 --parallel 2 --metrics >/workspace/logs/other.log 2>&1 </dev/null &
for _ in $(seq 1 60); do
  if curl -fsS http://127.0.0.1:8080/health >/dev/null 2>&1; then exit 0; fi
  sleep 1
done
cat /workspace/logs/other.log >&2
exit 1
