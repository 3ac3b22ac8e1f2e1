/** The `quorumkv` command line (commander). `buildProgram` is separate from main.ts so tests can drive it. */
import { runModeCluster, runModeServe } from './modes.js';
import type { SpawnableMode } from '../modes/common/spawn.js';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { addAuthCommands, addCredentialOptions } from './auth-commands.js';
import { addBenchCommand } from './bench.js';
import { addChatCommand } from './chat.js';
import { runCluster } from './cluster.js';
import { runNodeCommand } from './node-command.js';
import { APPS, ConfigError, DEFAULTS, LOG_LEVELS, MODES, parseServeConfig, type ServeFlags } from './config.js';
import { DEFAULT_ENDPOINTS, kvCommands, type CommonFlags, type KvIO } from './kv-commands.js';
import { addWatchCommand } from './watch-command.js';
import { runServe } from './serve.js';
import { addSecretCommands } from './secret.js';
import { addCertsCommands } from './certs.js';
import { addClientTlsOptions } from './client-tls.js';
import { addVerifyCommand } from './verify.js';
import { addCheckCommand } from './check.js';
import { addSnapshotCommands } from './snapshot.js';

export interface CliIO extends KvIO {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Set the process exit code (tests capture it). */
  exit(code: number): void;
}

export const processIO: CliIO = {
  out: (l) => process.stdout.write(l + '\n'),
  err: (l) => process.stderr.write(l + '\n'),
  env: process.env,
  exit: (code) => {
    process.exitCode = code;
  },
};

/** Flags shared by the tunable-taking commands (serve, cluster), in kebab case. */
const TUNABLE_FLAGS: readonly [string, string, string][] = [
  ['tick-ms', 'QKV_TICK_MS', `Raft tick interval in ms (default ${DEFAULTS.tickMs})`],
  ['election-ticks', 'QKV_ELECTION_TICKS', `election timeout in ticks (default ${DEFAULTS.electionTicks})`],
  ['heartbeat-ticks', 'QKV_HEARTBEAT_TICKS', `heartbeat interval in ticks (default ${DEFAULTS.heartbeatTicks})`],
  [
    'snapshot-threshold',
    'QKV_SNAPSHOT_THRESHOLD',
    `applied entries between snapshots (default ${DEFAULTS.snapshotThreshold})`,
  ],
  [
    'request-timeout-ms',
    'QKV_REQUEST_TIMEOUT_MS',
    `client request timeout before a 503, in ms (default ${DEFAULTS.requestTimeoutMs})`,
  ],
  ['max-key-bytes', 'QKV_MAX_KEY_BYTES', `largest key in bytes (default ${DEFAULTS.maxKeyBytes})`],
  ['max-value-bytes', 'QKV_MAX_VALUE_BYTES', `largest value in bytes (default ${DEFAULTS.maxValueBytes})`],
];

function addTunables(cmd: Command): Command {
  for (const [flag, env, help] of TUNABLE_FLAGS) cmd.addOption(new Option(`--${flag} <n>`, `${help}; env ${env}`));
  cmd.option('--no-forward', 'followers answer 307 to the leader instead of forwarding; env QKV_FORWARD=false');
  cmd.addOption(new Option('--log-level <level>', 'log level; env QKV_LOG_LEVEL (default warn)').choices(LOG_LEVELS));
  return cmd;
}

function addEndpoints(cmd: Command, io: CliIO): Command {
  addClientTlsOptions(cmd, io.env);
  return addCredentialOptions(cmd)
    .option(
      '-e, --endpoints <urls>',
      'comma-separated node URLs; env QKV_ENDPOINTS (default: the local cluster)',
      io.env.QKV_ENDPOINTS ?? DEFAULT_ENDPOINTS,
    )
    .option('--timeout-ms <n>', 'time limit of one HTTP attempt in ms');
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** `throwOnExit`: commander throws a CommanderError instead of exiting (for tests). */
export function buildProgram(io: CliIO = processIO, opts: { throwOnExit?: boolean } = {}): Command {
  const program = new Command('quorumkv');
  if (opts.throwOnExit === true) program.exitOverride();
  program
    .version(packageVersion())
    .description('quorumkv: a replicated key-value store (Raft). Run a node, a local cluster, or talk to one.')
    .showHelpAfterError()
    .configureOutput({
      writeOut: (s) => io.out(s.replace(/\n$/, '')),
      writeErr: (s) => io.err(s.replace(/\n$/, '')),
    });

  addTunables(
    program
      .command('serve')
      .description('run one node, configured by flags, QKV_* environment variables or a cluster config file')
      .option('--id <n>', 'this node id, 1..N; env QKV_ID')
      .option(
        '--id-from-hostname',
        "take the id from the host name's trailing ordinal + 1 (StatefulSet pod qkv-0 is node 1); env QKV_ID_FROM_HOSTNAME",
      )
      .option('--peers <list>', 'peer transport addresses "1=127.0.0.1:7001,2=..." incl. this node; env QKV_PEERS')
      .option('--http <host:port>', 'HTTP listen address (default 127.0.0.1:<8080+id>); env QKV_HTTP')
      .option(
        '--peer-listen <host>',
        "listen for peers on this address (e.g. 0.0.0.0) instead of this node's --peers entry; env QKV_PEER_LISTEN",
      )
      .option('--peer-http <list>', 'HTTP addresses of the nodes "1=127.0.0.1:8081,..."; env QKV_PEER_HTTP')
      .option('--data-dir <dir>', 'data directory (default ./data/node-<id>); env QKV_DATA_DIR')
      .option('--config <file>', 'JSON cluster config {"nodes":[{"id","peer","http"}...]}; env QKV_CONFIG')
      .addOption(new Option('--mode <mode>', 'replication mode; env QKV_MODE (default raft)').choices(MODES))
      .addOption(
        new Option('--app <app>', 'what a raft node replicates: kv (default) or chat; env QKV_APP').choices(APPS),
      )
      .option(
        '--cluster-secret-file <file>',
        'the secret every node of the cluster shares (peer credentials; `quorumkv secret create`); ' +
          'env QKV_CLUSTER_SECRET_FILE',
      )
      .option('--insecure', 'run without a cluster secret although listening beyond loopback; env QKV_INSECURE')
      .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM; `quorumkv certs node`); env QKV_TLS_CERT')
      .option('--tls-key <file>', 'the certificate key (PEM); env QKV_TLS_KEY')
      .option(
        '--tls-ca <file>',
        'the cluster CA (PEM): peers must present certificates it signed, clients may; env QKV_TLS_CA',
      )
      .argument(
        '[modeArgs...]',
        'for --mode quorum|eventual|causal: that node\'s own flags after "--" (see docs/<mode>.md); ' +
          'their environment variables (WRITE_QUORUM, SOCKET_ADDRESS, VIEW, ...) are honoured too',
      ),
  ).action(async (modeArgs: string[], flags: ServeFlags) => {
    const mode = flags.mode ?? io.env.QKV_MODE ?? 'raft';
    if (mode !== 'raft') {
      const env: Record<string, string> = {};
      if (flags.clusterSecretFile !== undefined) env.QKV_CLUSTER_SECRET_FILE = flags.clusterSecretFile;
      if (flags.insecure === true) env.QKV_INSECURE = '1';
      if (flags.tlsCert !== undefined) env.QKV_TLS_CERT = path.resolve(flags.tlsCert);
      if (flags.tlsKey !== undefined) env.QKV_TLS_KEY = path.resolve(flags.tlsKey);
      if (flags.tlsCa !== undefined) env.QKV_TLS_CA = path.resolve(flags.tlsCa);
      return io.exit(await runModeServe(mode as SpawnableMode, modeArgs, env));
    }
    let cfg;
    try {
      cfg = parseServeConfig(flags, io.env);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      io.err(`error: ${err.message}`);
      return io.exit(2);
    }
    try {
      await runServe(cfg, io);
    } catch (err) {
      io.err(`error: ${(err as Error).message}`);
      io.exit(1);
    }
  });

  addTunables(
    program
      .command('cluster')
      .description('run a local N-node cluster as child processes (data under ./data); Ctrl-C stops it')
      .addHelpText(
        'after',
        `
Single nodes (every mode), while the cluster runs:
  kill -9 <pid>              a crash: the supervisor logs it and restarts the node with backoff
                             (0.5 s doubling to 10 s); the other nodes keep serving. The pids are
                             printed at start and kept in <data>/supervisor.json.
  quorumkv node stop N       stop node N (SIGTERM); it stays down until \`quorumkv node start N\`
  quorumkv node start N      start it again (same data)
  quorumkv node restart N    stop and start it
  quorumkv node pause N      freeze it (SIGSTOP; \`kill -STOP <pid>\` does the same), resume: SIGCONT
  (add --data DIR when the cluster was started with --data DIR; chat: --data ./data/chat;
   quorum, causal, eventual: --mode M; their node ids are 1..n in the order printed at start)
  --no-restart               the old behaviour: a node that dies stops the whole cluster
A port already in use (another cluster running?) ends the command at once, naming the port.`,
      )
      .option('-n, --nodes <n>', 'number of nodes', '3')
      .option('--host <host>', 'address every node listens on', '127.0.0.1')
      .option('--base-http-port <port>', 'HTTP port of node 1 (node i gets base+i-1)', '8081')
      .option('--base-peer-port <port>', 'peer transport port of node 1', '7001')
      .option('--data <dir>', 'data directory (with --app chat: <dir>/chat unless given)', './data')
      .option('--restart', 'restart a node that dies, with backoff (the default; kept for old scripts)')
      .option('--no-restart', 'a node that dies stops the whole cluster (exit code 1) instead of being restarted')
      .option('--auth', 'key-value raft cluster: once ready, create a root user and enable authentication')
      .option('--tls', 'serve HTTPS with development certificates made once in <data>/tls (every mode)')
      .addOption(
        new Option('--app <app>', 'what the raft nodes replicate: kv (default) or chat (see docs/chat.md)')
          .choices(APPS)
          .default('kv'),
      )
      .addOption(
        new Option(
          '--mode <mode>',
          'replication mode: quorum = leader on 8000 + 5 followers, eventual = 3 replicas on 8100-8102, ' +
            'causal = 3 replicas on 8090-8092 (--nodes and --base-http-port change the layout)',
        )
          .choices(MODES)
          .default('raft'),
      ),
  ).action(
    async (
      flags: Record<string, string | boolean | undefined> & {
        nodes: string;
        host: string;
        baseHttpPort: string;
        basePeerPort: string;
        data: string;
      },
    ) => {
      if (flags.app === 'chat' && flags.mode !== 'raft') {
        io.err('error: --app chat runs on the raft mode only');
        return io.exit(2);
      }
      if (flags.auth === true && (flags.app === 'chat' || flags.mode !== 'raft')) {
        io.err('error: --auth is for the key-value store in raft mode');
        return io.exit(2);
      }
      if (typeof flags.mode === 'string' && flags.mode !== 'raft') {
        const explicit = (name: string) =>
          program.commands.find((c) => c.name() === 'cluster')?.getOptionValueSource(name) === 'cli';
        const code = await runModeCluster(
          flags.mode as SpawnableMode,
          {
            host: flags.host,
            nodes: explicit('nodes') ? Number(flags.nodes) : undefined,
            basePort: explicit('baseHttpPort') ? Number(flags.baseHttpPort) : undefined,
            data: flags.data,
            tls: flags.tls === true,
            restart: flags.restart !== false,
          },
          io,
        );
        return io.exit(code);
      }
      const ints = { nodes: flags.nodes, 'base-http-port': flags.baseHttpPort, 'base-peer-port': flags.basePeerPort };
      for (const [name, v] of Object.entries(ints)) {
        if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 65535) {
          io.err(`error: --${name}: expected a positive integer, got "${v}"`);
          return io.exit(2);
        }
      }
      const serveArgs: string[] = [];
      for (const [flag] of TUNABLE_FLAGS) {
        const key = flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
        const v = flags[key];
        if (typeof v === 'string') serveArgs.push(`--${flag}`, v);
      }
      if (flags.forward === false) serveArgs.push('--no-forward');
      if (typeof flags.logLevel === 'string') serveArgs.push('--log-level', flags.logLevel);
      const code = await runCluster(
        {
          nodes: Number(flags.nodes),
          host: flags.host,
          baseHttpPort: Number(flags.baseHttpPort),
          basePeerPort: Number(flags.basePeerPort),
          // A chat cluster keeps its data apart from the key-value cluster's unless told otherwise.
          data:
            flags.app === 'chat' &&
            program.commands.find((c) => c.name() === 'cluster')?.getOptionValueSource('data') !== 'cli'
              ? `${flags.data.replace(/\/+$/, '')}/chat`
              : flags.data,
          restart: flags.restart !== false,
          tls: flags.tls === true,
          app: flags.app === 'chat' ? 'chat' : 'kv',
          auth: flags.auth === true,
          serveArgs,
          readyTimeoutMs: 30_000,
        },
        io,
      );
      io.exit(code);
    },
  );

  program
    .command('node <action> <id>')
    .description(
      'control one node of the local cluster running under --data: stop, start, restart, pause (SIGSTOP), resume, kill (SIGKILL; restarted with backoff)',
    )
    .option('--data <dir>', "the running cluster's data directory (chat: ./data/chat)", './data')
    .addOption(new Option('--mode <mode>', "the running cluster's mode").choices(MODES).default('raft'))
    .action(async (action: string, id: string, flags: { data: string; mode: string }) => {
      io.exit(await runNodeCommand(io, action, id, flags.data, flags.mode));
    });

  addEndpoints(program.command('put <key> <value>'), io)
    .description('write a value (parsed as JSON if it is valid JSON, else taken as a string)')
    .action(async (key: string, value: string, flags: CommonFlags) =>
      io.exit(await kvCommands.put(io, flags, key, value)),
    );

  addEndpoints(program.command('get <key>'), io)
    .description('read a key; prints its value as JSON')
    .addOption(new Option('--consistency <level>', 'read level').choices(['linearizable', 'lease', 'stale']))
    .option('--meta', 'print the whole answer (value, revision, version, leader)')
    .action(async (key: string, flags: CommonFlags & { consistency?: string; meta?: boolean }) =>
      io.exit(await kvCommands.get(io, flags, key)),
    );

  addEndpoints(program.command('del <key>'), io)
    .description('delete a key')
    .action(async (key: string, flags: CommonFlags) => io.exit(await kvCommands.del(io, flags, key)));

  addEndpoints(program.command('list [prefix]'), io)
    .description('list keys with a prefix, in key order: one "key<TAB>value" line each')
    .option('--limit <n>', 'at most this many keys')
    .option('--after <key>', 'start after this key (the next page)')
    .action(async (prefix: string | undefined, flags: CommonFlags & { limit?: string; after?: string }) =>
      io.exit(await kvCommands.list(io, flags, prefix)),
    );

  addEndpoints(program.command('status'), io)
    .description('a table of every node: id, url, role, term, commit, applied, leader, health')
    .action(async (flags: CommonFlags) => io.exit(await kvCommands.status(io, flags)));

  addWatchCommand(program, io, (c) => addEndpoints(c, io));
  addAuthCommands(program, io, (c) => addEndpoints(c, io));
  addSnapshotCommands(program, io, (c) => addEndpoints(c, io));
  addSecretCommands(program, io);
  addCertsCommands(program, io);
  addBenchCommand(program, io);
  addChatCommand(program, io);
  addVerifyCommand(program, io);
  addCheckCommand(program, io);

  return program;
}
