#!/usr/bin/env bash
# Reference solution: run inside the seat as the candidate user.
set -euo pipefail
mkdir -p /workspace/monitor

# 1. A sampler of the model server: CPU over each 1 s interval from /proc/<pid>/stat ticks (as top
#    computes it), resident memory from VmRSS; one JSON line per second, kept running after logout.
cat >/workspace/monitor/sampler.py <<'PY'
import json, os, subprocess, time

pid = int(subprocess.check_output(["pgrep", "-o", "-x", "infer-engine"]).split()[0])
hz = os.sysconf("SC_CLK_TCK")

def ticks():
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])

def rss_mib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0

prev_t, prev_c = time.time(), ticks()
with open("/workspace/monitor/samples.jsonl", "a", buffering=1) as out:
    while True:
        time.sleep(1)
        now, c = time.time(), ticks()
        cpu = (c - prev_c) / hz / (now - prev_t) * 100
        out.write(json.dumps({"ts": round(now, 3), "pid": pid, "cpu_percent": round(cpu, 1), "rss_mib": round(rss_mib(), 1)}) + "\n")
        prev_t, prev_c = now, c
PY
setsid nohup python3 /workspace/monitor/sampler.py >/workspace/monitor/sampler.log 2>&1 </dev/null &

# 2. The report from the gateway log: status is field 9, latency the rt= field in seconds.
python3 - <<'PY'
import json, math, re
codes, lat = {}, []
for line in open("/var/log/gateway/access.log"):
    m = re.search(r'" (\d{3}) \d+ .*\brt=([0-9.]+)\s*$', line)
    if not m:
        continue
    codes[m.group(1)] = codes.get(m.group(1), 0) + 1
    lat.append(float(m.group(2)) * 1000)
lat.sort()
p95 = lat[math.ceil(0.95 * len(lat)) - 1]
report = {"requests": len(lat), "errors_by_status": {k: v for k, v in sorted(codes.items()) if int(k) >= 400}, "p95_ms": round(p95, 3)}
json.dump(report, open("/workspace/monitor/report.json", "w"), indent=2)
PY
sleep 2
test -s /workspace/monitor/samples.jsonl
