# syntax=docker/dockerfile:1
#
# Clinic Hub images, one Dockerfile with a target per service:
#
#   docker build --target hub           -t clinic-hub/hub .
#   docker build --target notify-worker -t clinic-hub/notify-worker .
#
# docker-compose.yml builds both. The code runs as TypeScript through tsx (as
# in development: the protocol package exports its sources), so the runtime
# image holds the sources and the production dependencies, no compiler and
# no test tools. media-server and ai-workers get their targets here when
# their code lands (ai-workers will need ONNXRUNTIME_NODE_INSTALL=skip for
# `npm ci`, see DESIGN.md).

ARG NODE_IMAGE=node:20-bookworm-slim

# Production dependencies only, from the lockfile.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
COPY protocol/package.json protocol/
COPY hub/package.json hub/
COPY web/package.json web/
COPY cli/package.json cli/
COPY load-tests/package.json load-tests/
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# Every dependency, and the type check: an image is only built from code that compiles.
FROM deps AS build
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY protocol protocol
COPY hub hub
COPY web web
COPY cli cli
COPY load-tests load-tests
COPY scripts scripts
RUN npm run typecheck

# What both services run on: Node, the production node_modules, the sources, a non-root user.
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
# Owned by root, read-only to the service: the code cannot be changed by the process that runs it.
COPY --from=deps /app /app
COPY --from=build /app/protocol/src protocol/src
COPY --from=build /app/hub/src hub/src
COPY --from=build /app/web/src web/src
COPY --from=build /app/web/public web/public
COPY --from=build /app/web/tsconfig.json web/
COPY --from=build /app/tsconfig.json ./
COPY config/clinics config/clinics
COPY deploy/healthcheck.mjs deploy/healthcheck.mjs
# The official image's unprivileged user (uid 1000). tsx keeps its cache under /tmp.
USER node

# A hub node: Socket.IO + HTTP on HUB_PORT. SIGTERM drains it (README.md, "Deploying").
FROM runtime AS hub
ENV HUB_PORT=8080 \
    HUB_HOST=0.0.0.0 \
    CLINICS_DIR=/app/config/clinics
EXPOSE 8080
# Slim images have no curl: Node's own fetch asks /healthz.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "deploy/healthcheck.mjs", "HUB_PORT", "/healthz"]
CMD ["node", "--import", "tsx", "hub/src/main.ts"]

# The notification worker: BullMQ jobs to in-app, e-mail, LINE and SMS; /metrics and health on NOTIFY_METRICS_PORT.
FROM runtime AS notify-worker
ENV NOTIFY_METRICS_PORT=9464 \
    CLINICS_DIR=/app/config/clinics
EXPOSE 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "deploy/healthcheck.mjs", "NOTIFY_METRICS_PORT", "/healthz"]
CMD ["node", "--import", "tsx", "hub/src/notify/worker-main.ts"]
