#!/usr/bin/env python3
"""生成考题用的模型网关访问日志（固定随机种子，每次输出完全相同）。
Writes the model gateway's access log for the monitor task: a fixed seed, so every run prints the
same lines. The grader's expected figures are computed from this output (see the task's test)."""
import random
import sys
from datetime import datetime, timedelta, timezone

SEED = 20250314
LINES = 420

CLIENTS = ["10.20.3.%d" % i for i in (11, 12, 17, 23, 31, 46)]
AGENTS = ['"python-httpx/0.27.0"', '"curl/7.88.1"', '"Mozilla/5.0 (X11; Linux x86_64)"', '"okhttp/4.12.0"']
# (weight, method, path, status, latency in seconds as (kind, a, b))
KINDS = [
    (62, "POST", "/v1/chat/completions", 200, ("lognorm", -0.9, 0.45)),
    (8, "POST", "/v1/completions", 200, ("lognorm", -1.2, 0.4)),
    (6, "GET", "/health", 200, ("uniform", 0.001, 0.004)),
    (4, "GET", "/v1/models", 200, ("uniform", 0.002, 0.009)),
    (5, "POST", "/v1/chat/completions", 400, ("uniform", 0.002, 0.015)),
    (3, "GET", "/v1/chat", 404, ("uniform", 0.001, 0.003)),
    (4, "POST", "/v1/chat/completions", 429, ("uniform", 0.001, 0.002)),
    (4, "POST", "/v1/chat/completions", 500, ("lognorm", -0.3, 0.5)),
    (3, "POST", "/v1/chat/completions", 503, ("uniform", 0.001, 0.006)),
    (1, "POST", "/v1/chat/completions", 504, ("uniform", 30.0, 30.05)),
]


def main() -> None:
    rnd = random.Random(SEED)
    t = datetime(2025, 3, 14, 9, 30, 0, tzinfo=timezone(timedelta(hours=8)))
    weights = [k[0] for k in KINDS]
    out = []
    for _ in range(LINES):
        t += timedelta(milliseconds=rnd.randint(200, 4000))
        _, method, path, status, (dist, a, b) = rnd.choices(KINDS, weights=weights)[0]
        rt = rnd.lognormvariate(a, b) if dist == "lognorm" else rnd.uniform(a, b)
        size = rnd.randint(600, 2400) if status == 200 else rnd.randint(40, 180)
        out.append(
            '%s - - [%s] "%s %s HTTP/1.1" %d %d "-" %s rt=%.3f'
            % (rnd.choice(CLIENTS), t.strftime("%d/%b/%Y:%H:%M:%S %z"), method, path, status, size, rnd.choice(AGENTS), rt)
        )
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
