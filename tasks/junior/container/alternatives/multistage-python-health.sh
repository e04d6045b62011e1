#!/usr/bin/env bash
# A correct solution by other means: a multi-stage Dockerfile built by BuildKit (byte-compiles the
# app in a first stage, copies it into the final one), a numeric non-root USER, ENTRYPOINT + CMD,
# the app's healthcheck declared in the Dockerfile (HEALTHCHECK, python3's urllib instead of curl);
# the proxy's nginx config as a conf.d file with its healthcheck in Python too; compose builds and
# tags both images itself.
set -euo pipefail
cd /workspace/container

cat > Dockerfile <<'DOCKERFILE'
# Stage 1: byte-compile the app.
FROM deploylab/app-base:exam AS build
COPY app/ /src/
RUN python3 -m compileall -q /src

# Stage 2: the image that runs.
FROM deploylab/app-base:exam
ARG APP_UID=10001
LABEL org.opencontainers.image.title=notes-api
LABEL org.opencontainers.image.version=1.0
RUN useradd --uid ${APP_UID} --no-create-home --shell /usr/sbin/nologin notes
COPY --from=build /src /srv/notes
WORKDIR /srv/notes
USER ${APP_UID}
EXPOSE 8000/tcp
HEALTHCHECK --interval=3s --timeout=3s --retries=5 \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
ENTRYPOINT ["python3", "-m", "uvicorn"]
CMD ["main:app", "--host", "0.0.0.0", "--port", "8000"]
DOCKERFILE

mkdir -p proxy
cat > proxy/default.conf <<'NGINX'
upstream notes_app {
    server app:8000;
}
server {
    listen 8080 default_server;
    location / {
        proxy_pass http://notes_app;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
}
NGINX
cat > proxy/Dockerfile <<'DOCKERFILE'
FROM deploylab/app-base:exam
RUN rm -f /etc/nginx/sites-enabled/default
COPY default.conf /etc/nginx/conf.d/default.conf
EXPOSE 8080
CMD ["nginx", "-g", "daemon off;"]
DOCKERFILE

cat > docker-compose.yml <<'COMPOSE'
version: "3.8"
services:
  app:
    build:
      context: .
      dockerfile: Dockerfile
    image: exam/notes-api:1.0
  proxy:
    build: ./proxy
    image: notes-proxy:local
    depends_on: [app]
    ports: ["8080:8080"]
    healthcheck:
      test: ["CMD", "python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
      interval: 3s
      timeout: 3s
      retries: 5
COMPOSE

DOCKER_BUILDKIT=1 docker build -q -t exam/notes-api:1.0 .
docker-compose -p notes up -d
for _ in $(seq 60); do
  n=$(docker ps --filter label=com.docker.compose.project=notes --filter health=healthy -q | wc -l)
  [ "$n" -ge 2 ] && break
  sleep 1
done
curl -fsS "http://dind:8080/api/echo?msg=alt" | grep -q '"echo":"alt"'
