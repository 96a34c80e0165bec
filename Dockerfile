# Sandgate gateway image. Build: docker build -t sandgate .
# Run:   docker run --rm -p 8080:8080 sandgate
# Stop:  docker stop -t 15 <container>   (SIGTERM; the drain takes up to 12 s, see README "Running in production")
#
# scripts/check-dockerfile.mjs runs this file's steps without docker (see README for what that proves).

# Build stage: the compilers (tsc, asc, wabt) are devDependencies from npm.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# `npm install`, not `npm ci`: see .ci/run (npm 11 lock files and optional binaries).
RUN npm install --no-audit --no-fund
COPY . .
RUN npm run build
RUN npm prune --omit=dev --no-audit --no-fund

# Runtime stage: compiled host, production dependencies, the sample plugins and the default config.
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/host ./dist/host
COPY --from=build /app/sample-plugins/hello-world/build ./sample-plugins/hello-world/build
COPY --from=build /app/sample-plugins/redact/build ./sample-plugins/redact/build
COPY config.json ./
USER node
EXPOSE 8080
STOPSIGNAL SIGTERM
# Exec form, node itself: no shell or npm between the container runtime and the
# gateway, so `docker stop`'s SIGTERM reaches it. As PID 1 node gets no default
# signal actions, which is fine: the gateway handles SIGTERM and SIGINT itself
# and starts no child processes, so there are no zombies to reap (--init is optional).
# --host 0.0.0.0: config.json listens on loopback, unreachable from outside a container.
CMD ["node", "dist/host/main/cli.js", "--config", "config.json", "--host", "0.0.0.0"]
