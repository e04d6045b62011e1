#!/usr/bin/env bash
# Another correct way: a fresh `top -b -n1` every second (its one frame measures a short interval
# of its own), the time stamped after it; the report from a Python script that parses fields by
# splitting the line instead of a regular expression.
set -euo pipefail
mkdir -p /workspace/monitor
cat >/workspace/monitor/sampler.sh <<'SH'
#!/usr/bin/env bash
pid=$(pgrep -o -x infer-engine)
while sleep 1; do
  line=$(top -b -n1 -e k -w 512 -p "$pid" | awk -v p="$pid" '$1 == p { print $6, $9 }')
  [ -n "$line" ] || continue
  read -r res cpu <<<"$line"
  printf '{"ts": %s, "pid": %d, "cpu_percent": %s, "rss_mib": %s}\n' "$(date +%s.%N)" "$pid" "${cpu/,/.}" "$(awk -v k="$res" 'BEGIN{printf "%.1f", k/1024}')"
done >>/workspace/monitor/samples.jsonl
SH
chmod +x /workspace/monitor/sampler.sh
setsid nohup /workspace/monitor/sampler.sh >/workspace/monitor/sampler.log 2>&1 </dev/null &
python3 - <<'PY'
import json, math
codes, lat = {}, []
with open("/var/log/gateway/access.log") as f:
    for line in f:
        after = line.split('"')[2].split()      # status, bytes after the request line
        status = after[0]
        rt = line.rsplit("rt=", 1)[1].strip()
        lat.append(float(rt) * 1000)
        if int(status) >= 400:
            codes[status] = codes.get(status, 0) + 1
lat.sort()
json.dump({"requests": len(lat), "errors_by_status": codes, "p95_ms": lat[math.ceil(0.95 * len(lat)) - 1]},
          open("/workspace/monitor/report.json", "w"))
PY
for _ in $(seq 1 20); do
  if [ "$(wc -l </workspace/monitor/samples.jsonl 2>/dev/null || echo 0)" -ge 2 ]; then exit 0; fi
  sleep 0.5
done
cat /workspace/monitor/sampler.log >&2
exit 1
