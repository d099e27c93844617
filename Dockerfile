# The replication reader container (src/reader). Build: docker build -t pg-cdc-reader .
# The sink worker (src/worker) is target `worker`: docker build --target worker -t pg-cdc-worker .
# The Functions app (src/functions) is target `functions`, the one-shot setup job of docker-compose.yml
# (es:setup, adx:setup) is target `setup`.
# Runs `node dist/src/reader/main.js` as the unprivileged `node` user; configuration from the
# environment (docs/reader.md), probes on HEALTH_PORT (/healthz, /readyz).

FROM node:22-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
# Exactly what the reader's compile needs (src/reader/tsconfig.build.json is inside src/reader): the
# reader, the shared plumbing (src/shared/core) and the shared event model (src/shared/events), so
# other packages' code cannot break it. CI compiles these same paths without Docker, read from the
# COPY lines of this stage (.ci/reader-image-compile.sh): keep every source the compile needs here.
COPY tsconfig.json ./
COPY src/reader ./src/reader
COPY src/shared/core ./src/shared/core
COPY src/shared/events ./src/shared/events
RUN npx tsc -p src/reader/tsconfig.build.json && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# The sink worker: the same sinks as the Functions app, from Kafka consumer groups (docs/worker.md).
# Its compile needs all of src/shared (the sinks) and src/worker; CI compiles the same paths
# (.ci/reader-image-compile.sh Dockerfile build-worker).
FROM node:22-slim AS build-worker
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src/worker ./src/worker
COPY src/shared ./src/shared
RUN npx tsc -p src/worker/tsconfig.build.json && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:22-slim AS worker
ENV NODE_ENV=production HEALTH_PORT=8080
# Two glibc malloc arenas instead of one per thread (libuv's pool runs the ADX sink's gzip): fewer
# half-empty arenas under a backlog of three sinks, about 10 MB less peak RSS (docs/worker.md "Memory").
ENV MALLOC_ARENA_MAX=2
WORKDIR /app
COPY --from=build-worker --chown=root:root /app/package.json ./
COPY --from=build-worker --chown=root:root /app/node_modules ./node_modules
COPY --from=build-worker --chown=root:root /app/dist/src/worker ./dist/src/worker
COPY --from=build-worker --chown=root:root /app/dist/src/shared ./dist/src/shared
USER node
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.HEALTH_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Give the container a termination grace period above WORKER_SHUTDOWN_TIMEOUT_MS (15 s by default).
# Heap flags: without them V8 sizes the heap from the host's memory and lets garbage pile up (572 MB
# RSS seen under bench:e2e). Under a backlog V8 grows the old space to its limit whatever is live, so
# the limit sets the RSS: 112 MB (the reader has 128) keeps three sinks under 256 MB, with the live
# heap at about 83 MB at the peak (docs/worker.md "Memory"); bench:e2e runs the worker with these flags.
CMD ["node", "--max-old-space-size=112", "--max-semi-space-size=8", "dist/src/worker/main.js"]

# The Functions app: the entry points (src/functions) and the sinks and generator they run (src/shared).
# CI compiles the same paths (.ci/reader-image-compile.sh Dockerfile build-functions).
FROM node:22-slim AS build-functions
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src/functions ./src/functions
COPY src/shared ./src/shared
RUN npx tsc -p src/functions/tsconfig.build.json && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# The Functions host with this app in the documented layout: the app under /home/site/wwwroot
# (package.json, whose `main` names dist/src/functions/*.js, host.json, node_modules, dist), console
# logging on so `docker logs` shows the host and the functions.
FROM mcr.microsoft.com/azure-functions/node:4-node22 AS functions
ENV AzureWebJobsScriptRoot=/home/site/wwwroot \
    AzureFunctionsJobHost__Logging__Console__IsEnabled=true \
    FUNCTIONS_WORKER_RUNTIME=node \
    NODE_ENV=production
WORKDIR /home/site/wwwroot
COPY host.json ./
COPY --from=build-functions /app/package.json ./
COPY --from=build-functions /app/node_modules ./node_modules
COPY --from=build-functions /app/dist/src/functions ./dist/src/functions
COPY --from=build-functions /app/dist/src/shared ./dist/src/shared

# The setup scripts (scripts/es-setup.ts, scripts/adx-setup.ts) and the shared code they run. CI
# compiles the same paths (.ci/reader-image-compile.sh Dockerfile build-setup).
FROM node:22-slim AS build-setup
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts ./scripts
COPY src/shared ./src/shared
RUN npx tsc -p scripts/tsconfig.build.json && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# One-shot: Elasticsearch templates and indices, then the ADX tables, mappings, views and functions
# (both safe to run again); exits non-zero when either fails.
FROM node:22-slim AS setup
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build-setup --chown=root:root /app/package.json ./
COPY --from=build-setup --chown=root:root /app/node_modules ./node_modules
COPY --from=build-setup --chown=root:root /app/dist/scripts ./dist/scripts
COPY --from=build-setup --chown=root:root /app/dist/src/shared ./dist/src/shared
USER node
CMD ["sh", "-c", "node dist/scripts/es-setup.js && node dist/scripts/adx-setup.js"]

# The reader: the default target (the last stage).
FROM node:22-slim
ENV NODE_ENV=production HEALTH_PORT=8080
WORKDIR /app
COPY --from=build --chown=root:root /app/package.json ./
COPY --from=build --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist/src/reader ./dist/src/reader
COPY --from=build --chown=root:root /app/dist/src/shared ./dist/src/shared
USER node
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.HEALTH_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Heap limits keep the resident set under ~200 MB (measured with a 1M-row transaction, bench/reader.mjs);
# the reader's own bound is CDC_MAX_INFLIGHT_BYTES.
CMD ["node", "--max-old-space-size=128", "--max-semi-space-size=8", "dist/src/reader/main.js"]
