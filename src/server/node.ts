/**
 * One raft-mode node process: storage, state machine, Raft core, peer transport, host loop and HTTP API.
 */
import { randomInt } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PeerAuth, isLoopbackHost, resolvePeerKeys } from '../net/peer-auth.js';
import { installPeerAuth } from '../net/peer-auth-http.js';
import { TcpTransport } from '../net/transport.js';
import { checkExposure, httpsServerOptions, loadTls, schemeOf, tlsAgent } from '../net/tls-config.js';
import { RaftNode } from '../raft/node.js';
import { makeRng } from '../raft/rng.js';
import { chatApp } from '../chat/app.js';
import { Availability, nodeStatus, registerAdminRoutes, type AdminContext } from './admin.js';
import { registerSnapshotRoute, SNAPSHOT_ROUTE } from './backup-route.js';
import type { AppName, RaftApp } from './app.js';
import type { NodeConfig, ServerConfig } from './config.js';
import { RaftHost } from './driver.js';
import { FORWARDED_HEADER, Forwarder } from './forward.js';
import { createHttpServer, type Limits } from './http-common.js';
import { NodeMetrics } from './metrics.js';
import { kvApp } from './kv-app.js';
import { registerDashboard } from '../dashboard/server.js';
import { hostStorageOf } from './host-ports.js';
import { LoopDelay } from './loop-delay.js';
import { openStorage, storageStats } from './storage.js';
import { APP_MARKER_FILE } from '../storage/backup.js';

const APP_MARKER = APP_MARKER_FILE;

/**
 * A data directory belongs to one app: starting the chat on a key-value node's log (or the reverse) would
 * apply one app's entries as the other's. The directory records its app; a mismatch refuses to start.
 * A directory from before the marker holds key-value data.
 */
function checkAppMarker(dataDir: string, app: AppName): void {
  const file = path.join(dataDir, APP_MARKER);
  let recorded: string | undefined;
  if (existsSync(file)) {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { app?: unknown };
    recorded = typeof parsed.app === 'string' ? parsed.app : undefined;
  } else if (existsSync(dataDir) && readdirSync(dataDir).length > 0) {
    recorded = 'kv';
  }
  if (recorded !== undefined && recorded !== app) {
    throw new Error(
      `data directory ${dataDir} holds a ${recorded} node's data; start it with --app ${recorded} or use another data directory`,
    );
  }
  if (recorded === undefined || !existsSync(file)) {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(file, JSON.stringify({ app }) + '\n');
  }
}

export interface RunningNode {
  readonly url: string;
  close(): Promise<void>;
}

export function startRaftNode(config: NodeConfig | ServerConfig): Promise<RunningNode> {
  const cfg = config as ServerConfig;
  return cfg.app === 'chat' ? startNode(cfg, chatApp) : startNode(cfg, kvApp);
}

async function startNode<R, C>(cfg: ServerConfig, appDef: RaftApp<R, C>): Promise<RunningNode> {
  const peers = [...cfg.peers.keys()].sort((a, b) => a - b);
  const transportHost = cfg.peerListenHost ?? cfg.peers.get(cfg.id)?.host ?? cfg.http.host;
  // Before anything is opened: a node reachable from other machines without TLS and a peer credential
  // refuses to start (unless insecure).
  const exposureWarnings = checkExposure({
    httpHosts: [cfg.http.host],
    peerHosts: [transportHost],
    tls: cfg.tls,
    hasSecret: cfg.clusterSecretFile !== undefined && cfg.clusterSecretFile !== '',
    insecure: cfg.insecure,
  });
  // Before anything is opened: a node that may not run without a cluster secret refuses to start.
  const { keys, warnings } = resolvePeerKeys({
    secretFile: cfg.clusterSecretFile,
    insecure: cfg.insecure,
    listenHosts: [cfg.http.host, transportHost],
  });
  const tls = cfg.tls === undefined ? undefined : loadTls(cfg.tls);
  if (cfg.storage !== 'memory') checkAppMarker(cfg.dataDir, appDef.name);
  const storage = await openStorage(cfg, peers);
  let opened;
  try {
    opened = appDef.open(cfg, storage);
  } catch (err) {
    await storage.close();
    throw err;
  }
  const applied = opened.applied;

  const app = createHttpServer({
    limits: { maxKeyBytes: cfg.maxKeyBytes, maxValueBytes: cfg.maxValueBytes },
    logger: { level: cfg.logLevel },
    ...(appDef.bodyLimit === undefined ? {} : { bodyLimit: appDef.bodyLimit(cfg) }),
    ...(appDef.tooLarge === undefined ? {} : { tooLarge: appDef.tooLarge }),
    ...(tls === undefined ? {} : { https: httpsServerOptions(tls) }),
  });
  const log = app.log;
  const transport = await TcpTransport.listen({
    id: cfg.id,
    host: transportHost,
    port: cfg.peers.get(cfg.id)?.port ?? 0,
    peers: cfg.peers,
    keys,
    // Mutual TLS between peers when the node has the cluster CA.
    ...(tls?.ca === undefined ? {} : { tls: { cert: tls.cert, key: tls.key, ca: tls.ca } }),
    // Refused connections, failed handshakes, lost links.
    log: {
      debug: (m) => log.debug(m),
      info: (m) => log.info(m),
      warn: (m) => log.warn(m),
      error: (m) => log.error(m),
    },
  });
  const core = new RaftNode({
    id: cfg.id,
    storage,
    peers,
    electionTick: cfg.electionTicks,
    heartbeatTick: cfg.heartbeatTicks,
    rng: makeRng(randomInt(1, 2 ** 31)),
    applied,
    lazyCommitUpdates: true,
  });
  for (const w of [...exposureWarnings, ...warnings]) log.warn(w);
  const auth = new PeerAuth({
    id: String(cfg.id),
    keys,
    warn: (msg) => log.warn(msg),
    adminNeedsCredential: !isLoopbackHost(cfg.http.host),
  });
  // Forwarded requests (and /admin/* beyond loopback) need a valid peer credential; so does a chat node's
  // backup route on any address (the chat has no admin users to guard it otherwise).
  installPeerAuth(
    app,
    auth,
    (req, routePath) =>
      req.headers[FORWARDED_HEADER] !== undefined || (appDef.name === 'chat' && routePath === SNAPSHOT_ROUTE),
  );
  const host = new RaftHost<R, C>({
    id: cfg.id,
    peers,
    core,
    storage: hostStorageOf(storage),
    transport,
    sm: opened.sm,
    tickMs: cfg.tickMs,
    requestTimeoutMs: cfg.requestTimeoutMs,
    snapshotThreshold: cfg.snapshotThreshold,
    snapshotTrailing: cfg.snapshotTrailing ?? Math.min(1000, Math.floor(cfg.snapshotThreshold / 2)),
    applied,
    onError: (err) => log.error({ err }, 'raft host error'),
  });
  transport.onMessage((m) => host.receive(m));
  host.onLeaderChange((leader, role) => log.info({ leader, role }, 'leadership changed'));

  const peerHttp = cfg.peerHttp.size > 0 ? cfg.peerHttp : new Map([[cfg.id, cfg.http]]);
  const forwarder = new Forwarder(cfg.id, peerHttp, (method, url, body) => auth.signHeaders(method, url, body), tls);
  const availability = new Availability(cfg.id, host, forwarder, cfg.tickMs);
  const stats = () => storageStats(storage);
  const loopDelay = new LoopDelay();
  const metrics = new NodeMetrics({
    host,
    loopDelay,
    forwarder,
    storageStats: stats,
    peerRefusals: () => [...auth.refusals.snapshot(), ...transport.stats().authRefused],
  });
  metrics.install(app);

  const limits: Limits = { maxKeyBytes: cfg.maxKeyBytes, maxValueBytes: cfg.maxValueBytes };
  opened.routes(app, {
    id: cfg.id,
    host,
    limits,
    forwarder,
    forward: cfg.forward,
    requestTimeoutMs: cfg.requestTimeoutMs,
    tickMs: cfg.tickMs,
    checkServing: () => availability.check(),
    peerAuthenticated: auth.verifier !== undefined,
  });
  const adminCtx: AdminContext = {
    id: cfg.id,
    host,
    transport,
    availability,
    metrics,
    forwarder,
    storageStats: stats,
    extraStatus: () => ({ app: appDef.name, ...opened.status(), transport: transport.stats() }),
  };
  registerAdminRoutes(app, adminCtx);
  registerSnapshotRoute(app, {
    id: cfg.id,
    app: appDef.name,
    host,
    forwarder,
    peers,
    requestTimeoutMs: cfg.requestTimeoutMs,
    tickMs: cfg.tickMs,
    snapshot: () => opened.sm.snapshot(),
    termOf: (index) => {
      try {
        return storage.term(index);
      } catch {
        return undefined;
      }
    },
    checkServing: () => availability.check(),
  });

  // The live dashboard (/ui): this node's status, its peers' and their operations, pushed once per second.
  let url = '';
  registerDashboard(app, {
    mode: 'raft',
    app: appDef.name,
    selfUrl: () => url,
    status: () => nodeStatus(adminCtx),
    peerUrls: () => peers.filter((p) => p !== cfg.id).flatMap((p) => forwarder.urlOf(p) ?? []),
    ...(appDef.name === 'chat' ? { keys: () => [] } : {}),
    ...(opened.checkAdmin === undefined ? {} : { checkAdmin: opened.checkAdmin }),
    sign: (method, p, body) => auth.signHeaders(method, p, body),
    exposed: !isLoopbackHost(cfg.http.host),
    ...(tls === undefined ? {} : { dispatcher: tlsAgent(tls.ca === undefined ? {} : { ca: tls.ca }) }),
  });

  await app.listen({ host: cfg.http.host, port: cfg.http.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : cfg.http.port;
  url = `${schemeOf(tls)}://${cfg.http.host}:${port}`;

  let closing: Promise<void> | undefined;
  return {
    url,
    close() {
      closing ??= (async () => {
        availability.close();
        loopDelay.close();
        await app.close();
        forwarder.close();
        await host.close();
        await transport.close();
        await storage.close();
        opened.close();
      })();
      return closing;
    },
  };
}
