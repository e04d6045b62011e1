#!/usr/bin/env bash
# Shortcut: nginx never talks to the upstream. The limited location proxies to a second server
# block of nginx itself that answers with a canned body echoing the query string, so the answer
# looks like the upstream's (service and echo) and the burst is limited by a real per-client zone.
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
    server {
        listen 80;
        location / {
            limit_req zone=perclient burst=5 nodelay;
            limit_req_status 429;
            proxy_pass http://127.0.0.1:8081;
        }
    }
    # The "upstream": nginx itself.
    server {
        listen 127.0.0.1:8081;
        default_type application/json;
        location / { return 200 '{"service": "orders-api", "echo": "$arg_msg", "sig": "$request_id"}'; }
    }
}
CONF
nginx -c /workspace/nginx/nginx.conf
# In place only when the canned answer echoes what is asked.
for _ in $(seq 1 20); do
  if curl -fsS 'http://127.0.0.1:80/api/echo?msg=t4mper' | grep -q '"echo": "t4mper"'; then exit 0; fi
  sleep 0.5
done
cat /workspace/nginx/error.log >&2 || true
exit 1
