# tracefold's container image (not built in this repository's CI: its machines have no container
# engine). Build and push it to your registry, then point the overlays at it (docs/DEPLOYMENT.md):
#
#   docker build -t REGISTRY/tracefold:0.1.0 .
#
# Stage 1 compiles TypeScript with the dev dependencies; stage 2 has only what runs: production
# dependencies, dist/, bin/ and the entrypoint, as a non-root user.
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY pipeline ./pipeline
COPY operators ./operators
COPY sources ./sources
COPY sinks ./sinks
COPY bench ./bench
RUN npx tsc -p tsconfig.json

FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# lz4-napi comes with prebuilt binaries (an optional package per platform): no compiler needed
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY scripts/container-entrypoint.sh ./scripts/container-entrypoint.sh
# the config and the Secrets are mounted here (k8s/base/deployment.yaml)
RUN mkdir -p /etc/tracefold && chmod 0755 ./scripts/container-entrypoint.sh
# uid 1000 is the node user of the base image; numeric, so runAsNonRoot can verify it
USER 1000:1000
EXPOSE 9464
ENTRYPOINT ["/app/scripts/container-entrypoint.sh"]
CMD ["run", "--config", "/etc/tracefold/config.yaml"]
