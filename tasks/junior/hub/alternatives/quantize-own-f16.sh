#!/usr/bin/env bash
# A correct solution done differently: the repo's F16 file, verified, quantized to Q8_0 locally
# (llama-quantize is deterministic, so this is the very file the repo publishes), then served
# with short flags from a relative path.
set -euo pipefail
HUB=http://127.0.0.1:8900/mirror-b/tinylab/lark-chat
mkdir -p /workspace/models /workspace/logs /workspace/work
cd /workspace/work
curl -fsS -O "$HUB/SHA256SUMS"
curl -fsS -O "$HUB/lark-chat-F16.gguf"
grep ' lark-chat-F16.gguf$' SHA256SUMS | sha256sum -c -
llama-quantize lark-chat-F16.gguf /workspace/models/chosen.gguf Q8_0 >/workspace/logs/quantize.log 2>&1
rm lark-chat-F16.gguf
cd /workspace/models
setsid nohup llama-server -m chosen.gguf --host 0.0.0.0 --port 8080 -t 1 -np 1 \
  >/workspace/logs/llama-server.log 2>&1 </dev/null &
for _ in $(seq 1 60); do
  curl -fsS http://127.0.0.1:8080/health >/dev/null 2>&1 && exit 0
  sleep 1
done
cat /workspace/logs/llama-server.log >&2
exit 1
