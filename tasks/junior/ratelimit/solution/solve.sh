#!/usr/bin/env bash
# Reference solution: run inside the seat as the candidate user.
set -euo pipefail
mkdir -p /workspace/nginx
cat >/workspace/nginx/nginx.conf <<'CONF'
worker_processes 1;
# /run is root's: the pid file and logs live beside the config.
pid /workspace/nginx/nginx.pid;
error_log /workspace/nginx/error.log;

events {
    worker_connections 256;
}

http {
    access_log /workspace/nginx/access.log;

    # Per client address: 2 requests per second, bursts of 5 more answered at once, the rest 429.
    limit_req_zone $binary_remote_addr zone=perclient:10m rate=2r/s;

    upstream orders_api {
        server 127.0.0.1:9000;
    }

    server {
        listen 80;

        location / {
            limit_req zone=perclient burst=5 nodelay;
            limit_req_status 429;
            proxy_pass http://orders_api;
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }
    }
}
CONF
nginx -t -c /workspace/nginx/nginx.conf
nginx -c /workspace/nginx/nginx.conf
for _ in $(seq 1 20); do
  if curl -fsS -o /dev/null http://127.0.0.1:80/api/orders; then exit 0; fi
  sleep 0.5
done
echo "nginx does not answer on port 80; see /workspace/nginx/error.log" >&2
exit 1
