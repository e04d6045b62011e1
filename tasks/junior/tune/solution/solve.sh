#!/usr/bin/env bash
# Reference solution: run inside the seat as the candidate user.
# From /opt/exam/tune/monitoring.csv: up to 4 requests in flight (3 of them queued behind one
# slot), the longest request 721 + 96 = 817 tokens (rejected by the 512-token slot), CPU 0 at
# ~100% while CPU 1 idles. So: 4 slots, 4 × 1024 tokens of context, 2 threads, no pinning.
set -euo pipefail
cd /workspace/tune
awk -F, 'NR > 1 { if ($2 > f) f = $2; if ($7 + $8 > t) t = $7 + $8 } END { print "peak in flight", f, "longest request", t }' /opt/exam/tune/monitoring.csv
pkill -x llama-server || true
for _ in $(seq 1 40); do pgrep -x llama-server >/dev/null || break; sleep 0.25; done
cat >start-llm.sh <<'SH'
#!/usr/bin/env bash
# Tuned from monitoring.csv: 4 slots (peak in flight), 1024 tokens per slot (longest request 817),
# 2 compute threads on both cores (one core was saturated, the other idle).
exec llama-server \
  -m /opt/models/tiny-llama-f16.gguf --alias tiny-llama \
  --host 0.0.0.0 --port 8080 \
  --threads 2 --parallel 4 --ctx-size 4096 \
  --metrics
SH
setsid nohup ./start-llm.sh >/workspace/tune/llm.log 2>&1 </dev/null &
for _ in $(seq 1 60); do
  if curl -fsS http://127.0.0.1:8080/props 2>/dev/null | grep -q '"total_slots":4'; then exit 0; fi
  sleep 0.5
done
cat /workspace/tune/llm.log >&2
exit 1
