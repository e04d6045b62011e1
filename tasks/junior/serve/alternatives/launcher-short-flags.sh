#!/usr/bin/env bash
# A correct solution written differently: a launcher script that execs llama-server with short
# flags (the same single process, exec'd, ends up holding 8080).
set -euo pipefail
mkdir -p "$HOME/bin" /workspace/logs
cat >"$HOME/bin/serve-model" <<'SH'
#!/usr/bin/env bash
exec llama-server -m /opt/exam/models/tiny-llama-q8_0.gguf -a tiny-llama --host 0.0.0.0 --port 8080 \
  -t 2 -c 2048 -np 2 --metrics
SH
chmod +x "$HOME/bin/serve-model"
setsid nohup "$HOME/bin/serve-model" >/workspace/logs/serve.log 2>&1 </dev/null &
for _ in $(seq 1 60); do
  curl -fsS http://127.0.0.1:8080/health >/dev/null 2>&1 && exit 0
  sleep 1
done
cat /workspace/logs/serve.log >&2
exit 1
