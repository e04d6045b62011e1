#!/usr/bin/env bash
# Reference solution: image exam/notes-api:1.0 FROM the preloaded base, non-root, labelled; compose
# project "notes" with the app and an nginx proxy, both with healthchecks; nginx config baked into
# its own image because the daemon (and so any bind mount) lives in another container.
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
    location / {
        proxy_pass http://app:8000;
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
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
    restart: unless-stopped
    healthcheck:
      test: ["CMD", "curl", "-fsS", "http://127.0.0.1:8000/healthz"]
      interval: 3s
      timeout: 3s
      retries: 5
  proxy:
    build: ./nginx
    depends_on:
      - app
    ports:
      - "8080:8080"
    restart: unless-stopped
    healthcheck:
      test: ["CMD", "curl", "-fsS", "http://127.0.0.1:8080/healthz"]
      interval: 3s
      timeout: 3s
      retries: 5
COMPOSE

docker build -t exam/notes-api:1.0 .
docker-compose -p notes up -d --build

# Wait until both report healthy, so the graders find a settled stack.
for _ in $(seq 60); do
  n=$(docker ps --filter label=com.docker.compose.project=notes --filter health=healthy -q | wc -l)
  [ "$n" -ge 2 ] && break
  sleep 1
done
docker ps
curl -fsS "http://dind:8080/api/echo?msg=hello"
