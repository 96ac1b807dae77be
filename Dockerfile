# sluice's image. Build it with ./create_docker-image.sh (docker, podman or buildah).
#
# BASE_IMAGE: a slim image of the current Node.js LTS. Any image with `node` (>= 20) and
# `npm` on PATH works; the image test builds one from a local node binary, since base
# images cannot be pulled there.
ARG BASE_IMAGE=node:24-bookworm-slim

# ---- build: every dependency, then TypeScript → dist/ and the bundle dist/main.js -------
# (RUN --mount needs BuildKit with docker; podman and buildah have it built in.)
FROM ${BASE_IMAGE} AS build
ENV NPM_CONFIG_UPDATE_NOTIFIER=false
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts: compiling needs none, and it keeps third-party code out of the build.
RUN --mount=type=cache,target=/root/.npm \
    npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY scripts/bundle.ts ./scripts/
RUN npm run build

# ---- prod-deps: production dependencies only -------------------------------------------
FROM ${BASE_IMAGE} AS prod-deps
ENV NPM_CONFIG_UPDATE_NOTIFIER=false
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# ---- runtime ----------------------------------------------------------------------------
FROM ${BASE_IMAGE}
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
LABEL org.opencontainers.image.title="sluice" \
      org.opencontainers.image.description="Kubernetes-native background jobs on the MySQL you already run" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
# HOME=/tmp: the only writable path when the root filesystem is read-only (the
# Deployment mounts an emptyDir there).
ENV NODE_ENV=production \
    HOME=/tmp
WORKDIR /app
# Owned by root and read-only for the user that runs: the code cannot be changed at run
# time. package.json makes dist/*.js ES modules; migrations/ is read as ../migrations.
COPY package.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY migrations ./migrations
# Numeric, so Kubernetes can verify runAsNonRoot; matches the Deployment's runAsUser.
USER 10001:10001
EXPOSE 9090
# Exec form: node is PID 1 and receives SIGTERM itself (graceful hand-back of jobs).
# `docker run IMAGE migrate` applies migrations and exits.
ENTRYPOINT ["node", "dist/main.js"]
