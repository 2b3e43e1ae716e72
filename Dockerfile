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
RUN npm run build

FROM node:24-slim AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and read-only to the app; only ./data (SQLite's default location) is the app's.
COPY --from=prod-deps /app/node_modules ./node_modules
# package.json carries "type": "module", which dist/ needs.
COPY package.json ./
COPY --from=build /app/dist ./dist
# The chat page served at / (its SDK modules are in dist/client and dist/protocol).
COPY public ./public
# Served at GET /openapi.json (src/http/openapi.controller.ts).
COPY docs/openapi.json ./docs/openapi.json
RUN mkdir -p /app/data && chown 10001:10001 /app/data
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
EXPOSE 3000
# What orchestrators send; stated so that no base image default can change it.
STOPSIGNAL SIGTERM
# Exec form: node itself is PID 1 and gets the SIGTERM (a shell form would run `sh -c`, which does
# not pass it on). As PID 1 it has no default signal actions, which is fine: main.ts handles both.
CMD ["node", "dist/main.js"]
