# syntax=docker/dockerfile:1
# The base image is pinned by digest (node:20-bookworm-slim, multi-arch index): a rebuild gets the same base, and a
# changed upstream tag cannot slip in. Bump it deliberately (docker buildx imagetools inspect node:20-bookworm-slim).
ARG NODE_IMAGE=node:20-bookworm-slim@sha256:2cf067cfed83d5ea958367df9f966191a942351a2df77d6f0193e162b5febfc0

# Build stage: compile TypeScript.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Runtime stage: production dependencies and the compiled service only, as a non-root user.
FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY proto ./proto
USER node
# 50051: gRPC API (kvindexer.v1, indexer.v1, health, reflection); 5557: ZMQ SUB for vLLM KV events (bind mode);
# 9090: /metrics and /healthz.
EXPOSE 50051 5557 9090
# Readiness from /healthz on the metrics listener the configuration names (KV_INDEXER_METRICS_HOST/PORT, as serve reads
# them; a wildcard host is probed on the loopback). With a --config file, probe it the same way: see docs/operations.md.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s \
  CMD ["node", "dist/cli/main.js", "health", "--http", "--timeout", "3000"]
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["serve"]
