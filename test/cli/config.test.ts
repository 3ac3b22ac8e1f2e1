import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  ConfigError,
  DEFAULTS,
  localClusterFile,
  parseAddressList,
  parseClusterFile,
  parseHostPort,
  parseServeConfig,
} from '../../src/cli/config.js';

const FILE = JSON.stringify({
  nodes: [
    { id: 1, peer: '127.0.0.1:7001', http: '127.0.0.1:8081' },
    { id: 2, peer: '127.0.0.1:7002', http: '127.0.0.1:8082' },
    { id: 3, peer: '10.0.0.3:7003', http: '0.0.0.0:8083' },
  ],
  tickMs: 20,
  forward: false,
});
const files: Record<string, string> = { '/etc/qkv.json': FILE };
const readFile = (f: string): string => {
  const t = files[f];
  if (t === undefined) throw new Error('ENOENT: no such file');
  return t;
};

test('flags alone: peers, http, tunables, defaults', () => {
  const { mode, node } = parseServeConfig(
    { id: '2', peers: '1=127.0.0.1:7001, 2=127.0.0.1:7002,3=[::1]:7003', http: '127.0.0.1:9002', tickMs: '25' },
    {},
    readFile,
  );
  assert.equal(mode, 'raft');
  assert.equal(node.id, 2);
  assert.deepEqual([...node.peers.keys()], [1, 2, 3]);
  assert.deepEqual(node.peers.get(3), { host: '::1', port: 7003 });
  assert.deepEqual(node.http, { host: '127.0.0.1', port: 9002 });
  assert.deepEqual([...node.peerHttp.entries()], [[2, { host: '127.0.0.1', port: 9002 }]]);
  assert.equal(node.dataDir, path.resolve('data/node-2'));
  assert.equal(node.tickMs, 25);
  assert.equal(node.electionTicks, DEFAULTS.electionTicks);
  assert.equal(node.heartbeatTicks, 1);
  assert.equal(node.snapshotThreshold, 10000);
  assert.equal(node.requestTimeoutMs, 3000);
  assert.equal(node.maxKeyBytes, 1024);
  assert.equal(node.maxValueBytes, 1048576);
  assert.equal(node.forward, true);
  assert.equal(node.logLevel, 'warn');
});

test('config file: --id picks the node; file settings apply; flags beat env beat file', () => {
  const { node } = parseServeConfig({ config: '/etc/qkv.json', id: '3' }, {}, readFile);
  assert.deepEqual(node.http, { host: '0.0.0.0', port: 8083 });
  assert.deepEqual(node.peers.get(1), { host: '127.0.0.1', port: 7001 });
  assert.equal(node.peers.size, 3);
  assert.deepEqual(node.peerHttp.get(1), { host: '127.0.0.1', port: 8081 });
  assert.equal(node.tickMs, 20);
  assert.equal(node.forward, false);

  const env = { QKV_CONFIG: '/etc/qkv.json', QKV_ID: '1', QKV_TICK_MS: '30', QKV_FORWARD: 'true', QKV_DATA_DIR: '/d' };
  const e = parseServeConfig({}, env, readFile).node;
  assert.equal(e.id, 1);
  assert.equal(e.tickMs, 30);
  assert.equal(e.forward, true);
  assert.equal(e.dataDir, '/d');

  const f = parseServeConfig({ id: '2', tickMs: '40', forward: false, dataDir: '/x' }, env, readFile).node;
  assert.equal(f.id, 2);
  assert.equal(f.tickMs, 40);
  assert.equal(f.forward, false);
  assert.equal(f.dataDir, '/x');
});

test('environment variables configure a node without flags', () => {
  const { mode, node } = parseServeConfig(
    {},
    {
      QKV_ID: '1',
      QKV_PEERS: '1=127.0.0.1:7001,2=127.0.0.1:7002',
      QKV_HTTP: '127.0.0.1:8001',
      QKV_PEER_HTTP: '1=127.0.0.1:8001,2=127.0.0.1:8002',
      QKV_ELECTION_TICKS: '20',
      QKV_HEARTBEAT_TICKS: '2',
      QKV_SNAPSHOT_THRESHOLD: '500',
      QKV_REQUEST_TIMEOUT_MS: '1500',
      QKV_MAX_KEY_BYTES: '50',
      QKV_MAX_VALUE_BYTES: '4096',
      QKV_LOG_LEVEL: 'debug',
      QKV_MODE: 'raft',
    },
    readFile,
  );
  assert.equal(mode, 'raft');
  assert.equal(node.peers.size, 2);
  assert.deepEqual(node.peerHttp.get(2), { host: '127.0.0.1', port: 8002 });
  assert.equal(node.electionTicks, 20);
  assert.equal(node.heartbeatTicks, 2);
  assert.equal(node.snapshotThreshold, 500);
  assert.equal(node.requestTimeoutMs, 1500);
  assert.equal(node.maxKeyBytes, 50);
  assert.equal(node.maxValueBytes, 4096);
  assert.equal(node.logLevel, 'debug');
});

test('bad configuration gives a ConfigError naming the culprit', () => {
  const bad: [Parameters<typeof parseServeConfig>[0], Record<string, string>, RegExp][] = [
    [{}, {}, /--id/],
    [{ id: 'x' }, {}, /--id/],
    [{ id: '0' }, {}, /--id/],
    [{ id: '1', peers: '1=127.0.0.1' }, {}, /--peers.*host:port/],
    [{ id: '1', peers: '2=127.0.0.1:7002' }, {}, /must include this node/],
    [{ id: '1', peers: '1=a:1,1=b:2' }, {}, /listed twice/],
    [{ id: '1', http: 'nope' }, {}, /--http/],
    [{ id: '1', tickMs: '-5' }, {}, /--tick-ms/],
    [{ id: '1' }, { QKV_MAX_VALUE_BYTES: '1e6' }, /QKV_MAX_VALUE_BYTES/],
    [{ id: '1', electionTicks: '2', heartbeatTicks: '2' }, {}, /below election/],
    [{ id: '1', mode: 'paxos' }, {}, /mode/],
    [{ id: '1', logLevel: 'loud' }, {}, /log level/],
    [{ id: '1' }, { QKV_FORWARD: 'maybe' }, /QKV_FORWARD/],
    [{ id: '9', config: '/etc/qkv.json' }, {}, /node 9 is not in/],
    [{ id: '1', config: '/missing.json' }, {}, /cannot read config file/],
  ];
  for (const [flags, env, re] of bad) {
    assert.throws(
      () => parseServeConfig(flags, env, readFile),
      (e: unknown) => e instanceof ConfigError && re.test(e.message),
    );
  }
});

test('cluster files are validated; the local cluster file round-trips', () => {
  assert.throws(() => parseClusterFile('{', 'f'), /invalid JSON/);
  assert.throws(() => parseClusterFile('{"nodes":[]}', 'f'), /non-empty/);
  assert.throws(() => parseClusterFile('{"nodes":[{"id":1,"peer":"a:1"}]}', 'f'), /http/);
  assert.throws(
    () => parseClusterFile('{"nodes":[{"id":1,"peer":"a:1","http":"a:2"},{"id":1,"peer":"a:3","http":"a:4"}]}', 'f'),
    /duplicate id 1/,
  );
  const f = parseClusterFile(localClusterFile(3, '127.0.0.1', 7001, 8081), 'local');
  assert.deepEqual(
    f.nodes.map((n) => [n.id, n.peer.port, n.http.port]),
    [
      [1, 7001, 8081],
      [2, 7002, 8082],
      [3, 7003, 8083],
    ],
  );
  assert.deepEqual(parseHostPort('localhost:80', 'x'), { host: 'localhost', port: 80 });
  assert.throws(() => parseHostPort('h:70000', 'x'), /out of range/);
  assert.throws(() => parseAddressList('', 'x'), /empty/);
});

test('the cluster secret file and --insecure: flag, environment, config file (relative to it)', () => {
  files['/etc/qkv/secure.json'] = JSON.stringify({ ...JSON.parse(FILE), clusterSecretFile: 'cluster.secret' });
  const fromFile = parseServeConfig({ config: '/etc/qkv/secure.json', id: '1' }, {}, readFile).node;
  assert.equal(fromFile.clusterSecretFile, '/etc/qkv/cluster.secret');
  assert.equal(fromFile.insecure, false);
  const env = { QKV_CLUSTER_SECRET_FILE: '/run/s', QKV_INSECURE: 'true' };
  const fromEnv = parseServeConfig({ config: '/etc/qkv/secure.json', id: '1' }, env, readFile).node;
  assert.equal(fromEnv.clusterSecretFile, '/run/s');
  assert.equal(fromEnv.insecure, true);
  const fromFlag = parseServeConfig({ id: '1', clusterSecretFile: 'rel/s', insecure: true }, env, readFile).node;
  assert.equal(fromFlag.clusterSecretFile, path.resolve('rel/s'));
  assert.equal(fromFlag.insecure, true);
  assert.equal(parseServeConfig({ id: '1' }, {}, readFile).node.clusterSecretFile, undefined);
  files['/etc/qkv/bad.json'] = JSON.stringify({ ...JSON.parse(FILE), clusterSecretFile: 7 });
  assert.throws(() => parseServeConfig({ config: '/etc/qkv/bad.json', id: '1' }, {}, readFile), /clusterSecretFile/);
});
