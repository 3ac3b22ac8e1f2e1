import { parseArgs } from 'node:util';

/**
 * Flag/environment parsing shared by the quorum and eventual runnable entries: every option can be given as
 * `--flag value` or through an environment variable; the flag wins.
 */
export interface OptionSpec {
  readonly flag: string;
  readonly env?: string;
  readonly description: string;
}

export class ArgReader {
  private readonly values: Record<string, string | boolean | undefined>;

  constructor(
    private readonly specs: readonly OptionSpec[],
    argv: readonly string[],
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    const options: Record<string, { type: 'string' } | { type: 'boolean' }> = { help: { type: 'boolean' } };
    for (const s of specs) options[s.flag] = { type: 'string' };
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
