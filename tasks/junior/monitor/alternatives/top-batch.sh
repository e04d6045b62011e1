#!/usr/bin/env bash
# Another correct way: top in batch mode refreshing every second (its %CPU is over each refresh
# interval), parsed by a bash loop; the report with awk and sort instead of Python.
set -euo pipefail
mkdir -p /workspace/monitor
cat >/workspace/monitor/sampler.sh <<'SH'
#!/usr/bin/env bash
pid=$(pgrep -o -x infer-engine)
# -e k: memory in KiB; -w 512: wide lines. The first frame is skipped (it has no interval yet).
top -b -d 1 -e k -w 512 -p "$pid" | while read -r p _ _ _ _ res _ _ cpu _; do
  [ "$p" = "$pid" ] || continue
  if [ -z "${seen:-}" ]; then seen=1; continue; fi
  printf '{"ts": %s, "pid": %d, "cpu_percent": %s, "rss_mib": %s}\n' "$(date +%s.%N)" "$pid" "${cpu/,/.}" "$(awk -v k="$res" 'BEGIN{printf "%.1f", k/1024}')"
done >>/workspace/monitor/samples.jsonl
SH
chmod +x /workspace/monitor/sampler.sh
setsid nohup /workspace/monitor/sampler.sh >/workspace/monitor/sampler.log 2>&1 </dev/null &

# The report: status is the field after the quoted request line, the latency the rt= value.
log=/var/log/gateway/access.log
total=$(wc -l <"$log")
errors=$(awk -F'"' '{ split($3, f, " "); if (f[1] >= 400) n[f[1]]++ } END { sep=""; for (c in n) { printf "%s\"%s\": %d", sep, c, n[c]; sep=", " } }' "$log")
rank=$(( (95 * total + 99) / 100 ))
p95=$(sed -n 's/.*rt=\([0-9.]*\)[[:space:]]*$/\1/p' "$log" | sort -g | sed -n "${rank}p" | awk '{ printf "%.3f", $1 * 1000 }')
printf '{"requests": %d, "errors_by_status": {%s}, "p95_ms": %s}\n' "$total" "$errors" "$p95" >/workspace/monitor/report.json
for _ in $(seq 1 20); do
  if [ "$(wc -l </workspace/monitor/samples.jsonl 2>/dev/null || echo 0)" -ge 2 ]; then exit 0; fi
  sleep 0.5
done
cat /workspace/monitor/sampler.log >&2
exit 1
