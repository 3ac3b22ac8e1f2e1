# quorumkv: one node per container (any mode; raft by default). See docs/deploy.md.
#
#   docker build -t quorumkv .
#   docker run --rm quorumkv --help
#
# Build stage: the toolchain better-sqlite3 needs to compile its native addon from source (no prebuilt
# binary is downloaded), the TypeScript build, then the dev dependencies pruned away.
FROM node:20-bookworm-slim AS build
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# Dependencies without their install scripts, then better-sqlite3 compiled against this image's own Node
# headers when it has them (node-gyp downloads them otherwise).
RUN npm ci --ignore-scripts --no-audit --no-fund \
  && if [ -f /usr/local/include/node/node.h ]; then export npm_config_nodedir=/usr/local; fi \
  && npm rebuild better-sqlite3 --build-from-source
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json && npm prune --omit=dev --no-audit --no-fund

# Run stage: the compiled program and production dependencies only, as the unprivileged user "node".
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
  QKV_DATA_DIR=/data \
  QKV_HTTP=0.0.0.0:8080 \
  QKV_PEER_LISTEN=0.0.0.0 \
  QKV_HEALTH_URL=http://127.0.0.1:8080/health
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
RUN mkdir -p /data /secrets \
  && chown node:node /data /secrets \
  && ln -s /app/dist/src/cli/main.js /usr/local/bin/quorumkv \
  && chmod +x /app/dist/src/cli/main.js
USER node
VOLUME ["/data"]
# 8080: HTTP API (raft, and the other modes' nodes as configured); 7000: raft peer transport.
EXPOSE 8080 7000
# Liveness: /health answers 200 while the process serves (a raft node without quorum is "degraded", still
# alive). QKV_HEALTH_URL names the node's own URL (another port, https://...); the local certificate is not
# verified (the probe only asks whether this process answers).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "const u=new URL(process.env.QKV_HEALTH_URL||'http://127.0.0.1:8080/health');require(u.protocol==='https:'?'https':'http').get(u,{rejectUnauthorized:false,timeout:2500},(r)=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1)).on('timeout',()=>process.exit(1))"]
ENTRYPOINT ["node", "/app/dist/src/cli/main.js"]
CMD ["serve"]
