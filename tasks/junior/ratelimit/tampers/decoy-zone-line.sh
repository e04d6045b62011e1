#!/usr/bin/env bash
# Shortcut: the required per-client limit_req_zone line is written but never used; the limit_req
# in force names another zone keyed on the server port, one bucket for every client. From one
# client the burst looks the same.
set -euo pipefail
mkdir -p /workspace/nginx
cat >/workspace/nginx/nginx.conf <<'CONF'
worker_processes 1;
pid /workspace/nginx/nginx.pid;
error_log /workspace/nginx/error.log;
events { worker_connections 256; }
http {
    access_log off;
    limit_req_zone $binary_remote_addr zone=perclient:10m rate=2r/s;
    limit_req_zone $server_port zone=everyone:1m rate=2r/s;
    server {
        listen 80;
        location / {
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
# In place only when the one-bucket limit refuses part of a burst.
sleep 3
codes=$(for _ in $(seq 1 12); do curl -s -o /dev/null -w '%{http_code}\n' 'http://127.0.0.1:80/api/echo?msg=x' & done; wait)
echo "$codes" | grep -q 429
echo "$codes" | grep -q 200
# Let the one shared bucket drain before grading (the grader shares it).
sleep 4
