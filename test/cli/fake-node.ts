/**
 * A stand-in for `quorumkv serve` in cluster-runner tests: reads the cluster file the runner wrote, answers
 * `/health` on its HTTP address, exits on SIGTERM. Run as `node fake-node.js serve --config F --id N ...`.
 * The test runner also loads every file under dist/test: without the `serve` argument it does nothing.
 */
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { parseClusterFile } from '../../src/cli/config.js';

function serve(args: string[]): void {
  const arg = (name: string): string => args[args.indexOf(name) + 1] as string;
  const file = parseClusterFile(readFileSync(arg('--config'), 'utf8'), 'cluster');
  const id = Number(arg('--id'));
  const self = file.nodes.find((n) => n.id === id);
  if (self === undefined) throw new Error(`node ${id} not in the cluster file`);
  if (process.env.FAKE_NODE_EADDRINUSE === String(id)) {
    // What a node prints when its port was taken between the supervisor's probe and its listen.
    process.stderr.write(`Error: listen EADDRINUSE: address already in use ${self.http.host}:${self.http.port}\n`);
    process.exit(1);
  }
  const server = http.createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ status: 'healthy', node_id: id, mode: 'raft', role: 'follower', args }));
  });
  server.listen(self.http.port, self.http.host, () => process.stdout.write(`fake node ${id} up, pid ${process.pid}\n`));
  process.on('SIGTERM', () => {
    process.stdout.write(`fake node ${id} stopping\n`);
    server.close();
    server.closeAllConnections();
  });
}

const args = process.argv.slice(2);
if (args[0] === 'serve') serve(args);
