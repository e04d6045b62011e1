#!/usr/bin/env bash
# Reference solution: run inside the seat as the candidate user.
set -euo pipefail
HUB=http://127.0.0.1:8900
mkdir -p /workspace/models /workspace/logs /workspace/dl
cd /workspace/dl
# Read the cards: lark-chat is commercial (apache-2.0), Chinese, 4096 context; its Q8_0 is 8-bit
# and under 5 MiB (F16 is too big, Q4_K_M is 4-bit).
curl -fsS "$HUB/tinylab/lark-chat/README.md" >README.md
curl -fsS "$HUB/tinylab/lark-chat/SHA256SUMS" >SHA256SUMS
curl -fsS -o lark-chat-Q8_0.gguf "$HUB/tinylab/lark-chat/lark-chat-Q8_0.gguf"
if ! grep ' lark-chat-Q8_0.gguf$' SHA256SUMS | sha256sum -c -; then
  # The main copy is damaged: fetch it from the mirror.
  curl -fsS -o lark-chat-Q8_0.gguf "$HUB/mirror-b/tinylab/lark-chat/lark-chat-Q8_0.gguf"
  grep ' lark-chat-Q8_0.gguf$' SHA256SUMS | sha256sum -c -
fi
mv lark-chat-Q8_0.gguf /workspace/models/chosen.gguf
setsid nohup llama-server -m /workspace/models/chosen.gguf --host 0.0.0.0 --port 8080 \
  >/workspace/logs/llama-server.log 2>&1 </dev/null &
for _ in $(seq 1 60); do
  curl -fsS http://127.0.0.1:8080/health >/dev/null 2>&1 && exit 0
  sleep 1
done
cat /workspace/logs/llama-server.log >&2
exit 1
