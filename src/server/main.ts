#!/usr/bin/env node
/**
 * Runs one raft-mode node: `node dist/src/server/main.js --config node.json` (see ConfigFile in config.ts).
 * Prints one JSON line `{"event":"listening","id":..,"url":..}` once it serves; SIGTERM/SIGINT close it.
 * `--exit-with-parent`: exit when stdin closes (the harness that spawned it went away).
 */
import { loadConfigFile } from './config.js';
import { startRaftNode } from './node.js';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const i = args.indexOf('--config');
  if (i < 0 || args[i + 1] === undefined) {
    process.stderr.write('usage: main.js --config <node.json>\n');
    process.exit(2);
  }
  if (args.includes('--exit-with-parent')) {
    // Spawned by a test or benchmark harness: never outlive it, even if it dies without cleaning up.
    process.stdin.on('close', () => process.exit(0));
    process.stdin.on('end', () => process.exit(0));
    process.stdin.resume();
  }
  const config = loadConfigFile(args[i + 1]);
  const node = await startRaftNode(config);
  process.stdout.write(JSON.stringify({ event: 'listening', id: config.id, url: node.url }) + '\n');
  const stop = () => {
    node.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`quorumkv node failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
