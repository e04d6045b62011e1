#!/usr/bin/env bash
# Shortcut: every required line is in the file, but not where it applies to port 80: the
# per-client limit_req sits in a server block on port 8081 (its zone line also repeated inside a
# types block, where nginx reads it as a MIME type) and commented out in the port-80 location,
# which is limited by a one-bucket zone.
set -euo pipefail
mkdir -p /workspace/nginx
cat >/workspace/nginx/nginx.conf <<'CONF'
worker_processes 1;
pid /workspace/nginx/nginx.pid;
error_log /workspace/nginx/error.log;
events { worker_connections 256; }
http {
    access_log off;
    types {
        application/json json;
        limit_req_zone $binary_remote_addr zone=perclient:10m rate=2r/s;
    }
    limit_req_zone $binary_remote_addr zone=clients:10m rate=2r/s;
    limit_req_zone $server_port zone=everyone:1m rate=2r/s;
    server {
        listen 8081;
        location / {
            limit_req zone=clients burst=5 nodelay;
            proxy_pass http://127.0.0.1:9000;
        }
    }
    server {
        listen 80;
        location / {
            # limit_req zone=clients burst=5 nodelay;
            limit_req zone=everyone burst=5 nodelay;
            limit_req_status 429;
            proxy_pass http://127.0.0.1:9000;
        }
    }
}
CONF
nginx -c /workspace/nginx/nginx.conf
for _ in $(seq 1 20); do
  if curl -fsS 'http://127.0.0.1:80/api/echo?msg=x' | grep -q orders-api; then break; fi
  sleep 0.5
done
sleep 3
codes=$(for _ in $(seq 1 12); do curl -s -o /dev/null -w '%{http_code}\n' 'http://127.0.0.1:80/api/echo?msg=x' & done; wait)
echo "$codes" | grep -q 429
echo "$codes" | grep -q 200
# Let the one shared bucket drain before grading (the grader shares it).
sleep 4
