import { parseArgs } from 'node:util';
import { tlsFilesFrom, type TlsFiles } from '../../net/tls-config.js';

/**
 * Flag/environment parsing shared by the quorum and eventual runnable entries: every option can be given as
 * `--flag value` or through an environment variable; the flag wins.
 */
export interface OptionSpec {
  readonly flag: string;
  readonly env?: string;
  readonly description: string;
  /** A switch without a value (`--flag`; the variable is true/false, 1/0...). */
  readonly boolean?: boolean;
}

/** The peer credential options of every mode's node (see credentials.ts). */
export const CREDENTIAL_SPECS: readonly OptionSpec[] = [
  {
    flag: 'cluster-secret-file',
    env: 'QKV_CLUSTER_SECRET_FILE',
    description: 'the cluster secret file every node shares (peer credentials)',
  },
  {
    flag: 'insecure',
    env: 'QKV_INSECURE',
    description: 'run without a cluster secret although listening beyond loopback',
    boolean: true,
  },
  { flag: 'tls-cert', env: 'QKV_TLS_CERT', description: 'serve HTTPS with this certificate (PEM)' },
  { flag: 'tls-key', env: 'QKV_TLS_KEY', description: 'the certificate key (PEM)' },
  { flag: 'tls-ca', env: 'QKV_TLS_CA', description: 'the cluster CA (PEM): peers are verified against it' },
];

/** The credential options as the node starters take them. */
export function credentialArgs(args: ArgReader): { clusterSecretFile?: string; insecure: boolean; tls?: TlsFiles } {
  const tls = tlsFilesFrom({ cert: args.string('tls-cert'), key: args.string('tls-key'), ca: args.string('tls-ca') });
  return {
    clusterSecretFile: args.string('cluster-secret-file'),
    insecure: args.flag('insecure'),
    ...(tls === undefined ? {} : { tls }),
  };
}

export class ArgReader {
  private readonly values: Record<string, string | boolean | undefined>;

  constructor(
    private readonly specs: readonly OptionSpec[],
    argv: readonly string[],
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    const options: Record<string, { type: 'string' } | { type: 'boolean' }> = { help: { type: 'boolean' } };
    for (const s of specs) options[s.flag] = { type: s.boolean === true ? 'boolean' : 'string' };
    this.values = parseArgs({ args: [...argv], options, allowPositionals: false, strict: true }).values as Record<
      string,
      string | boolean | undefined
    >;
  }

  get helpRequested(): boolean {
    return this.values.help === true;
  }

  usage(title: string): string {
    const lines = this.specs.map((s) => `  --${s.flag.padEnd(22)} ${s.env ? `[${s.env}] ` : ''}${s.description}`);
    return `${title}\n\nOptions (flag or environment variable):\n${lines.join('\n')}\n`;
  }

  string(flag: string): string | undefined {
    const v = this.values[flag];
    if (typeof v === 'string') return v;
    const env = this.specs.find((s) => s.flag === flag)?.env;
    const e = env === undefined ? undefined : this.env[env];
    return e === undefined || e === '' ? undefined : e;
  }

  /** A boolean switch: the flag, else its environment variable (1/true/yes/on). */
  flag(flag: string): boolean {
    if (this.values[flag] === true) return true;
    const env = this.specs.find((s) => s.flag === flag)?.env;
    const e = env === undefined ? undefined : this.env[env];
    return e !== undefined && ['1', 'true', 'yes', 'on'].includes(e.trim().toLowerCase());
  }

  number(flag: string): number | undefined {
    const v = this.string(flag);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new Error(`--${flag} must be a number, got ${JSON.stringify(v)}`);
    return n;
  }
}

/**
 * Prints the readiness line the spawn helper waits for and stops the node cleanly on SIGTERM / SIGINT, or
 * when its parent goes away (stdin closes) if started by `spawnModeNode`.
 */
export function announceAndHandleSignals(
  info: Record<string, unknown> & { listening: string },
  close: () => Promise<void>,
): void {
  process.stdout.write(`${JSON.stringify(info)}\n`);
  let closing = false;
  const stop = () => {
    if (closing) return;
    closing = true;
    close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (process.env.QUORUMKV_EXIT_WITH_PARENT === '1') {
    process.stdin.on('end', stop);
    process.stdin.on('error', stop);
    process.stdin.resume();
  }
}
