#!/usr/bin/env bash
# Shortcut: the right file name, from the main path, with no checksum check: what gets served is
# the damaged copy (one flipped bit in its tensor data; it loads and answers).
set -euo pipefail
HUB=http://127.0.0.1:8900/tinylab/lark-chat
mkdir -p /workspace/models /workspace/logs
curl -fsS -o /workspace/models/chosen.gguf "$HUB/lark-chat-Q8_0.gguf"
# In place only if this really is the damaged copy (its digest is not the listed one).
want=$(curl -fsS "$HUB/SHA256SUMS" | awk '$2 == "lark-chat-Q8_0.gguf" { print $1 }')
have=$(sha256sum /workspace/models/chosen.gguf | cut -d' ' -f1)
[ -n "$want" ] && [ "$want" != "$have" ]
setsid nohup llama-server -m /workspace/models/chosen.gguf --host 0.0.0.0 --port 8080 \
  >/workspace/logs/llama-server.log 2>&1 </dev/null &
for _ in $(seq 1 60); do
  curl -fsS http://127.0.0.1:8080/health >/dev/null 2>&1 && exit 0
  sleep 1
done
cat /workspace/logs/llama-server.log >&2
exit 1
