/** `quorumkv watch [prefix]`: prints every change under a prefix as it is committed (raft mode, `GET /watch`). */
import { Option, type Command } from 'commander';
import { guarded, makeClient, type CommonFlags, type KvIO } from './kv-commands.js';
import type { WatchEvent } from '../client/watch.js';

export interface WatchFlags extends CommonFlags {
  sinceRevision?: string;
  json?: boolean;
  count?: string;
}

/** One line per change: `<revision>\tput\t<key>\t<value JSON>` or `<revision>\tdelete\t<key>` (or the JSON). */
export function formatChange(c: WatchEvent, json: boolean): string {
  if (json) return JSON.stringify(c);
  return c.type === 'put'
    ? `${c.revision}\tput\t${c.key}\t${JSON.stringify(c.value ?? null)}`
    : `${c.revision}\tdelete\t${c.key}`;
}

function nonNegative(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new TypeError(`${name}: expected a non-negative integer, got "${v}"`);
  return n;
}

export async function runWatch(io: KvIO, flags: WatchFlags, prefix: string | undefined): Promise<number> {
  return guarded(io, async () => {
    const since = nonNegative('--since-revision', flags.sinceRevision);
    const count = nonNegative('--count', flags.count);
    const watch = makeClient(flags).watch(prefix ?? '', {
      ...(since === undefined ? {} : { sinceRevision: since }),
      onReconnect: (r) => io.err(`watch: reconnecting to ${r.endpoint} after revision ${r.after} (${r.reason})`),
    });
    let n = 0;
    if (count === 0) return;
    for await (const c of watch) {
      io.out(formatChange(c, flags.json === true));
      if (count !== undefined && ++n >= count) watch.close();
    }
  });
}

export function addWatchCommand(
  program: Command,
  io: KvIO & { exit(code: number): void },
  withEndpoints: (c: Command) => Command,
): void {
  withEndpoints(program.command('watch [prefix]'))
    .description('print every change to keys under a prefix as it is committed (Ctrl-C stops); raft mode')
    .addOption(new Option('--since-revision <r>', 'start after this revision (default: from now)'))
    .option('--json', 'one JSON object per change')
    .option('--count <n>', 'stop after this many changes')
    .action(async (prefix: string | undefined, flags: WatchFlags) => io.exit(await runWatch(io, flags, prefix)));
}
