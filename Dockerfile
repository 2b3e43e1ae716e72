# syntax=docker/dockerfile:1
# agent-gateway: build with `docker build -t agent-gateway:0.1.0 .`; deployment notes in docs/deploy.md.
#
# --ignore-scripts: the only install script among the dependencies is better-sqlite3 12's native
# build (python3, make, g++). On Node 22 and later the app loads better-sqlite3-13 instead, whose
# N-API binaries ship in the package (src/database/database.connect.ts), so on this Node 24 image
# that build would only cost minutes and a toolchain. Moving the image to Node 20 means dropping
# --ignore-scripts in the prod-deps stage and giving it python3, make and g++.

FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# tsc, then the bundle the image runs: dist/bundle/main.mjs and its chunks (src/build/bundle.command.ts).
RUN npm run build

FROM node:24-slim AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24-slim AS runtime
ENV NODE_ENV=production
# Node's module compile cache: filled once below, at image build, and read by every start, which
# then loads compiled code instead of parsing and compiling the bundle again.
ENV NODE_COMPILE_CACHE=/app/.node-compile-cache
WORKDIR /app
# Owned by root and read-only to the app; only ./data (SQLite's default location) is the app's.
# The bundle leaves to node_modules what it cannot hold: better-sqlite3-13's native addon and `ws`.
COPY --from=prod-deps /app/node_modules ./node_modules
# package.json carries "type": "module", which dist/ needs.
COPY package.json ./
# dist/bundle is what runs; beside it dist/ keeps the SDK modules the chat page serves, the token
# command (`node dist/auth/token.command.js`) and the compile cache's warm-up.
COPY --from=build /app/dist ./dist
# The chat page served at /.
COPY public ./public
# Served at GET /openapi.json (src/http/openapi.controller.ts).
COPY docs/openapi.json ./docs/openapi.json
RUN mkdir -p /app/data /app/.node-compile-cache && chown 10001:10001 /app/data /app/.node-compile-cache
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
# One start as every start will be, stopped once ready: SQLite in memory, loopback only, a throwaway
# secret, so no database or network is needed. Same files, paths, Node and user (Node keeps one cache
# per user id, and writes its files for that user only): the cache fits the starts that follow.
RUN node dist/build/warm-compile-cache.command.js
# Then the cache is root's, readable by all and written by none: a start reads it, never changes it.
USER root
RUN chown -R root:root /app/.node-compile-cache && chmod -R a+rX /app/.node-compile-cache
USER 10001:10001
EXPOSE 3000
# What orchestrators send; stated so that no base image default can change it.
STOPSIGNAL SIGTERM
# Exec form: node itself is PID 1 and gets the SIGTERM (a shell form would run `sh -c`, which does
# not pass it on). As PID 1 it has no default signal actions, which is fine: main.ts handles both.
CMD ["node", "dist/bundle/main.mjs"]
