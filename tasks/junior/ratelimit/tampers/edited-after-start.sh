#!/usr/bin/env bash
# Shortcut: nginx runs a one-bucket configuration; afterwards the file is rewritten to show the
# required per-client lines. The rewritten file was never loaded (nginx could not even load it: its
# proxy_pass names an upstream block that does not exist), so what is in force is the first one.
set -euo pipefail
mkdir -p /workspace/nginx
cat >/workspace/nginx/nginx.conf <<'CONF'
worker_processes 1;
pid /workspace/nginx/nginx.pid;
error_log /workspace/nginx/error.log;
events { worker_connections 256; }
http {
    access_log off;
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
sleep 1
cat >/workspace/nginx/nginx.conf <<'CONF'
worker_processes 1;
pid /workspace/nginx/nginx.pid;
error_log /workspace/nginx/error.log;
events { worker_connections 256; }
http {
    access_log off;
    limit_req_zone $binary_remote_addr zone=perclient:10m rate=2r/s;
    server {
        listen 80;
        location / {
            limit_req zone=perclient burst=5 nodelay;
            limit_req_status 429;
            proxy_pass http://orders_api;
        }
    }
}
CONF
sleep 4
# In place: nginx still answers (with the old configuration) and the file says otherwise.
curl -fsS 'http://127.0.0.1:80/api/echo?msg=x' | grep -q orders-api
! nginx -t -c /workspace/nginx/nginx.conf 2>/dev/null
