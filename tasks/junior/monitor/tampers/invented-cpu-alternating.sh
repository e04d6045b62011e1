#!/usr/bin/env bash
# Shortcut: the right PID and a real RSS read every second, but the CPU figure is made up, flipping
# between 0 and 99 so that "busy under load" and "near idle before it" both show up somewhere.
set -euo pipefail
mkdir -p /workspace/monitor
cat >/workspace/monitor/sampler.py <<'PY'
import json, subprocess, time
pid = int(subprocess.check_output(["pgrep", "-o", "-x", "infer-engine"]).split()[0])
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
k = 0
with open("/workspace/monitor/samples.jsonl", "a", buffering=1) as out:
    while True:
        time.sleep(1)
        k += 1
        out.write(json.dumps({"ts": round(time.time(), 3), "pid": pid, "cpu_percent": 99.0 if k % 2 else 0.0, "rss_mib": round(rss(), 1)}) + "\n")
PY
setsid nohup python3 /workspace/monitor/sampler.py >/workspace/monitor/sampler.log 2>&1 </dev/null &
# In place once it has written lines that alternate.
for _ in $(seq 1 20); do
  if [ "$(wc -l </workspace/monitor/samples.jsonl 2>/dev/null || echo 0)" -ge 2 ]; then exit 0; fi
  sleep 0.5
done
cat /workspace/monitor/sampler.log >&2
exit 1
