# syntax=docker/dockerfile:1
#
# Clinic Hub images, one Dockerfile with a target per service:
#
#   docker build --target hub           -t clinic-hub/hub .
#   docker build --target notify-worker -t clinic-hub/notify-worker .
#   docker build --target media-server  -t clinic-hub/media-server .
#   docker build --target ai-worker     -t clinic-hub/ai-worker .
#
# docker-compose.yml builds them all. The code runs as TypeScript through tsx
# (as in development: the workspace packages export their sources), so the
# runtime image holds the sources and the production dependencies, no
# compiler and no test tools.

ARG NODE_IMAGE=node:20-bookworm-slim

# Production dependencies only, from the lockfile.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
# .npmrc keeps the dependencies' install scripts from running (onnxruntime-node's would fetch CUDA files).
COPY package.json package-lock.json .npmrc ./
COPY protocol/package.json protocol/
COPY platform/package.json platform/
COPY recordings/package.json recordings/
COPY hub/package.json hub/
COPY media-server/package.json media-server/
COPY ai-workers/package.json ai-workers/
COPY web/package.json web/
COPY cli/package.json cli/
COPY load-tests/package.json load-tests/
COPY test-kit/package.json test-kit/
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# Every dependency, the mediasoup worker, and the type check: an image is only built from code that compiles.
FROM deps AS build
# mediasoup-worker's build dependencies (media-server/worker-build/README.md).
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ pkg-config flatbuffers-compiler libflatbuffers-dev libsrtp2-dev libuv1-dev libssl-dev libabsl-dev \
 && rm -rf /var/lib/apt/lists/*
RUN npm ci --no-audit --no-fund
# mediasoup's own install script does not run (.npmrc); its worker is built here from the package's sources.
COPY media-server/worker-build media-server/worker-build
# Built from the installed mediasoup package's sources; fails the image build if it cannot.
RUN npm run build:mediasoup -- --install-to /app/mediasoup-worker/mediasoup-worker
COPY tsconfig.json ./
COPY protocol protocol
COPY platform platform
COPY recordings recordings
COPY hub hub
COPY media-server media-server
COPY ai-workers ai-workers
COPY web web
COPY cli cli
COPY load-tests load-tests
COPY test-kit test-kit
COPY scripts scripts
RUN npm run typecheck

# What every service runs on: Node, the production node_modules, the sources, a non-root user.
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
# Owned by root, read-only to the service: the code cannot be changed by the process that runs it.
COPY --from=deps /app /app
COPY --from=build /app/protocol/src protocol/src
COPY --from=build /app/platform/src platform/src
COPY --from=build /app/recordings/src recordings/src
COPY --from=build /app/hub/src hub/src
COPY --from=build /app/media-server/src media-server/src
COPY --from=build /app/ai-workers/src ai-workers/src
COPY --from=build /app/ai-workers/models ai-workers/models
COPY --from=build /app/web/src web/src
COPY --from=build /app/web/public web/public
COPY --from=build /app/web/partials web/partials
COPY --from=build /app/web/tsconfig.json web/
COPY --from=build /app/tsconfig.json ./
COPY config/clinics config/clinics
COPY deploy/healthcheck.mjs deploy/healthcheck.mjs
# The official image's unprivileged user (uid 1000). tsx keeps its cache under /tmp.
USER node

# A hub node: Socket.IO + HTTP on HUB_PORT. SIGTERM drains it (README.md, "Deploying").
FROM runtime AS hub
# Chat attachments (encrypted files, HUB_ATTACHMENTS_DIR): a volume shared by the hub nodes, written by the service's user.
USER root
RUN mkdir -p /attachments && chown node:node /attachments && chmod 700 /attachments
USER node
ENV HUB_PORT=8080 \
    HUB_HOST=0.0.0.0 \
    CLINICS_DIR=/app/config/clinics \
    HUB_ATTACHMENTS_DIR=/attachments
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

# A media-server node (WebRTC SFU): signalling, /healthz, /readyz and /metrics on
# MEDIA_PORT (TCP); media (mediasoup) on UDP and TCP MEDIA_UDP_PORT_MIN + i for worker
# i (werift fallback: the UDP range MEDIA_UDP_PORT_MIN..MAX), which must be
# published as it is (docker-compose.yml) with MEDIA_ANNOUNCED_IP set to the host's
# address. SIGTERM drains: no new rooms, live rooms get MEDIA_DRAIN_GRACE_MS.
FROM runtime AS media-server
# The worker built in the build stage; it needs libssl3 and libsrtp2-1 besides glibc and libstdc++.
USER root
RUN apt-get update && apt-get install -y --no-install-recommends libssl3 libsrtp2-1 && rm -rf /var/lib/apt/lists/*
COPY --from=build /app/mediasoup-worker/mediasoup-worker /usr/local/lib/clinic-hub/mediasoup-worker
USER node
ENV MEDIASOUP_WORKER_BIN=/usr/local/lib/clinic-hub/mediasoup-worker \
    MEDIA_PORT=8090 \
    MEDIA_HOST=0.0.0.0 \
    MEDIA_UDP_PORT_MIN=40000 \
    MEDIA_UDP_PORT_MAX=40099 \
    RECORDINGS_DIR=/recordings
EXPOSE 8090 40000-40099/udp
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "deploy/healthcheck.mjs", "MEDIA_PORT", "/healthz"]
CMD ["node", "--import", "tsx", "media-server/src/main.ts"]

# An AI worker: live consultation sessions and whole-recording transcription
# (BullMQ). Models are read from AI_MODELS_DIR only (a volume filled by
# `clinic models pull`); ffmpeg decodes recordings.
FROM runtime AS ai-worker
USER root
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg && rm -rf /var/lib/apt/lists/*
USER node
ENV AI_METRICS_PORT=9465 \
    AI_MODELS_DIR=/models \
    RECORDINGS_DIR=/recordings
EXPOSE 9465
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "deploy/healthcheck.mjs", "AI_METRICS_PORT", "/healthz"]
CMD ["node", "--import", "tsx", "ai-workers/src/main.ts"]
