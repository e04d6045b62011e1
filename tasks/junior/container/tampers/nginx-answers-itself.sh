#!/usr/bin/env bash
# Shortcut: the image and compose project are right, but nginx answers /api/echo itself with a
# canned body that echoes the query string in the app's format (service, echo, hostname, uid);
# only /healthz reaches the app.
set -euo pipefail
cd /workspace/container
cat > Dockerfile <<'DOCKERFILE'
FROM deploylab/app-base:exam
LABEL org.opencontainers.image.title="notes-api" \
      org.opencontainers.image.version="1.0"
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin app
WORKDIR /app
COPY app/ /app/
USER app
EXPOSE 8000
CMD ["python3", "-m", "uvicorn", "main:app", "--host", "0.0.0.0", "--port", "8000"]
DOCKERFILE
mkdir -p nginx
cat > nginx/notes.conf <<'NGINX'
server {
    listen 8080;
    location = /api/echo {
        default_type application/json;
        return 200 '{"service": "notes-api", "echo": "$arg_msg", "hostname": "$hostname", "uid": 10001}';
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
    build: .
    healthcheck:
      test: ["CMD", "curl", "-fsS", "http://127.0.0.1:8000/healthz"]
      interval: 3s
      timeout: 3s
      retries: 5
  proxy:
    build: ./nginx
    depends_on: [app]
    ports: ["8080:8080"]
    healthcheck:
      test: ["CMD", "curl", "-fsS", "http://127.0.0.1:8080/healthz"]
      interval: 3s
      timeout: 3s
      retries: 5
COMPOSE
docker build -q -t exam/notes-api:1.0 .
docker-compose -p notes up -d --build
for _ in $(seq 60); do
  n=$(docker ps --filter label=com.docker.compose.project=notes --filter health=healthy -q | wc -l)
  [ "$n" -ge 2 ] && break
  sleep 1
done
# In place when nginx's own answer echoes what is asked.
curl -fsS "http://dind:8080/api/echo?msg=t4mper" | grep -q '"echo": "t4mper"'
