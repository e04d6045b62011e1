#!/usr/bin/env bash
# A correct solution laid out another way: the main file only includes conf.d/*.conf (relative to
# its folder); the zone is keyed on $remote_addr; limit_req is set once at server level and
# inherited by the locations; limit_req_status at http level; burst without nodelay (excess
# requests are queued, not refused); a named upstream with keepalive; started with -g.
set -euo pipefail
mkdir -p /workspace/nginx/conf.d /workspace/nginx/logs /workspace/nginx/run
cat >/workspace/nginx/nginx.conf <<'CONF'
worker_processes auto;
pid /workspace/nginx/run/nginx.pid;
error_log /workspace/nginx/logs/error.log notice;
events {}
http {
    include /etc/nginx/mime.types;
    access_log /workspace/nginx/logs/access.log;
    include conf.d/*.conf;
}
CONF
cat >/workspace/nginx/conf.d/10-limits.conf <<'CONF'
# One bucket per client address, 2 requests a second.
limit_req_zone $remote_addr zone=clients:10m rate=2r/s;
limit_req_status 429;
CONF
cat >/workspace/nginx/conf.d/20-api.conf <<'CONF'
upstream orders {
    server 127.0.0.1:9000;
    keepalive 8;
}
server {
    listen 0.0.0.0:80 default_server;
    server_name _;
    limit_req zone=clients burst=5;

    location = /health {
        proxy_pass http://orders;
    }
    location ^~ /api/ {
        proxy_pass http://orders;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header X-Real-IP $remote_addr;
    }
    location ~ \.php$ {
        return 404;
    }
}
CONF
nginx -t -c /workspace/nginx/nginx.conf
nginx -c /workspace/nginx/nginx.conf -g 'daemon on;'
for _ in $(seq 1 20); do
  if curl -fsS 'http://127.0.0.1:80/api/echo?msg=alt' | grep -q '"echo":"alt"'; then exit 0; fi
  sleep 0.5
done
cat /workspace/nginx/logs/error.log >&2
exit 1
