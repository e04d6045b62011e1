# The deploylab runner itself, for centres that run it with docker compose (a registry is needed
# for the Node base image). Sandboxes are siblings on the host engine, reached via its socket.
ARG NODE_BASE=node:20-bookworm-slim
FROM ${NODE_BASE}
WORKDIR /opt/deploylab
COPY package.json package-lock.json ./
RUN npm ci --omit=dev
COPY bin ./bin
COPY runner ./runner
COPY graders ./graders
COPY tasks ./tasks
COPY sandbox-images ./sandbox-images
ENV DEPLOYLAB_DATA_DIR=/var/lib/deploylab
LABEL deploylab.component=runner
EXPOSE 8700
ENTRYPOINT ["node", "bin/deploylab.js"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8700"]
