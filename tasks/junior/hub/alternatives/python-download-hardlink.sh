#!/usr/bin/env bash
# A correct solution done differently: Python's urllib straight from the mirror, hashlib for the
# check, the file kept in a cache folder and hard-linked as chosen.gguf, served from the cache
# path through a launcher that execs llama-server with other flags.
set -euo pipefail
mkdir -p /workspace/models /workspace/logs "$HOME/bin"
python3 - <<'PY'
import hashlib, os, urllib.request
base = "http://127.0.0.1:8900/mirror-b/tinylab/lark-chat/"
sums = dict(reversed(l.split()) for l in urllib.request.urlopen(base + "SHA256SUMS").read().decode().splitlines() if l.strip())
name = "lark-chat-Q8_0.gguf"
cache = "/workspace/hub-cache/tinylab/lark-chat"
os.makedirs(cache, exist_ok=True)
data = urllib.request.urlopen(base + name).read()
if hashlib.sha256(data).hexdigest() != sums[name]:
    raise SystemExit("checksum mismatch")
with open(os.path.join(cache, name), "wb") as f:
    f.write(data)
if os.path.exists("/workspace/models/chosen.gguf"):
    os.unlink("/workspace/models/chosen.gguf")
os.link(os.path.join(cache, name), "/workspace/models/chosen.gguf")
PY
cat >"$HOME/bin/serve-chosen" <<'LAUNCH'
#!/usr/bin/env bash
exec llama-server --model /workspace/hub-cache/tinylab/lark-chat/lark-chat-Q8_0.gguf --alias lark-chat \
  --host 0.0.0.0 --port 8080 -t 1 -c 4096 -np 4 --metrics
LAUNCH
chmod +x "$HOME/bin/serve-chosen"
setsid nohup "$HOME/bin/serve-chosen" >/workspace/logs/serve.log 2>&1 </dev/null &
for _ in $(seq 1 60); do
  curl -fsS http://127.0.0.1:8080/health >/dev/null 2>&1 && exit 0
  sleep 1
done
cat /workspace/logs/serve.log >&2
exit 1
