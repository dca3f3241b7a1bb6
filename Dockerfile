# jwt-sidecar container image.
#
#   docker build -t jwt-sidecar \
#     --build-arg VERSION="$(node -p 'require("./package.json").version')" \
#     --build-arg REVISION="$(git rev-parse HEAD)" \
#     --build-arg SOURCE=https://github.com/OWNER/jwt-sidecar .
#   docker run --read-only -v "$PWD/sidecar.yaml:/etc/jwt-sidecar/sidecar.yaml:ro" \
#     -p 8080:8080 -p 9901:9901 jwt-sidecar
#
# No image is published: push this one to your registry and set the Helm chart's
# image.repository to it (the chart refuses to render without it). docs/kubernetes.md#image
# has the podman / buildah equivalents and the multi-arch build (docker buildx build
# --platform linux/amd64,linux/arm64 --push): the base images are published for both, and the
# production dependencies are plain JavaScript, so nothing here differs per architecture.
#
# The config is read from $JWT_SIDECAR_CONFIG (/etc/jwt-sidecar/sidecar.yaml, where the Helm
# chart mounts it); `--config FILE` overrides it: `docker run jwt-sidecar run --config FILE`.
# Without a mounted file `run` exits 1 with "cannot read the file" instead of serving the
# example config (its issuer is idp.example.com). Other commands work the same way:
# `docker run -v …:/etc/jwt-sidecar/sidecar.yaml:ro jwt-sidecar check-config`.
#
# The image is never built in CI (no Docker engine there). CI lints this file (dockerfilelint,
# in .ci/run), and test/integration/production-install.test.ts does what the deps and runtime
# stages do: it installs the lockfile's production dependencies next to dist/src,
# package.json and config/*.yaml, then starts `node dist/src/cli.js run` in a read-only
# directory with only PATH, NODE_ENV and JWT_SIDECAR_CONFIG in its environment, and as uid
# 65532 when the test runs as root. That test also checks that this file's runtime-stage
# COPY, USER, ENTRYPOINT and CMD lines are the ones it reproduces, so keep them in step.

# ---- build: compile TypeScript to dist/src (dev dependencies live only in this stage) ----
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
# No source maps: the image runs node without --enable-source-maps and carries no .ts
# sources, so a .map file would be dead weight that no stack trace ever uses.
RUN npm run build -- --sourceMap false

# ---- deps: production dependencies only, exactly the lockfile, no install scripts ----
# (none of the production dependencies has one; --ignore-scripts keeps it that way).
FROM node:24-bookworm-slim AS deps
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# ---- runtime: distroless Node 24 on Debian 13, no shell, no npm, non-root ----
# The production dependencies are plain JavaScript (no native addons), so installing them
# on bookworm and running them on Debian 13 is safe.
FROM gcr.io/distroless/nodejs24-debian13:nonroot

ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=""
LABEL org.opencontainers.image.title="jwt-sidecar" \
      org.opencontainers.image.description="Authentication sidecar: verifies JWTs against JWKS and forwards verified identity to a legacy HTTP app" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"

ENV NODE_ENV=production \
    JWT_SIDECAR_CONFIG=/etc/jwt-sidecar/sidecar.yaml

# Everything below is owned by root and read-only to the runtime user: the process can read
# its code and config and write nothing, so the container runs with readOnlyRootFilesystem.
# package.json is where the code finds its version and package root (src/package-root.ts);
# config/demo.yaml is what `jwt-sidecar demo` loads.
WORKDIR /app
COPY --from=deps /src/node_modules ./node_modules
COPY package.json ./
COPY config/sidecar.yaml config/demo.yaml ./config/
COPY --from=build /src/dist/src ./dist/src

# 65532 is distroless's `nonroot`; numeric so that Kubernetes runAsNonRoot can verify it.
USER 65532:65532
# 8080: proxy (listen), 9901: admin (/healthz, /readyz, /metrics; keep it off the public network).
EXPOSE 8080 9901

# Exec form, node as PID 1 (distroless keeps node at /nodejs/bin/node): SIGTERM/SIGINT reach
# the CLI's handlers directly and run the graceful shutdown (readiness 503, shutdown.delay,
# drain, exit 0); SIGHUP reloads the config. The sidecar starts no child processes, so no
# init process is needed to reap zombies.
ENTRYPOINT ["/nodejs/bin/node", "/app/dist/src/cli.js"]
CMD ["run"]
