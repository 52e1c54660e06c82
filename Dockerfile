# syntax=docker/dockerfile:1
# One image for every mailpools service; docker-compose.yml picks the service by its command,
#   node services/<name>/src/main.ts
# Node 24 runs the TypeScript sources as they are (type stripping): there is no build step.
# .dockerignore lets only the package files, bin/, cli/, libs/, tools/, schemas/ and services/ into the context.

ARG NODE_IMAGE=node:24-slim

# The workspace manifests alone (package.json, package-lock.json, libs/*/package.json,
# services/*/package.json, tools/*/package.json, cli/package.json), so that the dependency layer is rebuilt only when they change.
# Their devDependencies are dropped: the image never installs them, and `npm ci` would otherwise
# insist that the lock file also lists every platform's optional build of dev tools (Biome's), which
# a lock file written on a registry without them does not.
FROM ${NODE_IMAGE} AS manifests
WORKDIR /app
COPY . .
RUN mkdir -p libs services tools cli \
  && find libs services tools -mindepth 2 -maxdepth 2 ! -name package.json -exec rm -rf {} + \
  && find cli -mindepth 1 -maxdepth 1 ! -name package.json -exec rm -rf {} + \
  && rm -rf bin schemas \
  && npm pkg delete devDependencies --workspaces --include-workspace-root

# Production dependencies of the root and of every workspace, exactly as locked (npm ci fails if
# the lock file lacks one); npm links the workspaces (node_modules/@mailpools/* -> libs/*, services/*).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY --from=manifests /app ./
RUN --mount=type=cache,target=/root/.npm \
  npm ci --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app ./
# package.json, package-lock.json, bin/, cli/, libs/, tools/, schemas/ and services/ (a plain `COPY services`
# would fail while that folder does not exist yet).
COPY . .
USER node
# /metrics, /healthz, /readyz (MAILPOOLS_HTTP_PORT).
EXPOSE 9400
CMD ["node", "bin/mailpools.ts", "help"]
