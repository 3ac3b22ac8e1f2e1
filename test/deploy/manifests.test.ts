/**
 * The deployment files (no container runtime runs here): every YAML file under deploy/ parses; the
 * Kubernetes manifests validate against the Kubernetes API schemas (kubernetes-models) and the compose files
 * against the compose-spec JSON schema (as dclint ships it) with ajv; then what the schemas cannot know: the
 * flags and environment variables the Dockerfile, compose files and StatefulSet give our CLI are ones it
 * reads, the raft nodes' configuration parses into the cluster it describes, the StatefulSet, Services and
 * PodDisruptionBudget agree, and the Dockerfile's health check command tells a 200 from a 503.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { Ajv } from 'ajv';
import { parseAllDocuments } from 'yaml';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { Service } from 'kubernetes-models/v1/Service';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { buildProgram } from '../../src/cli/program.js';
import { ConfigError, idFromHostname, parseServeConfig } from '../../src/cli/config.js';
import { isSocketAddress } from '../../src/modes/causal/peers.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const DIST = path.join(ROOT, 'dist');
const require = createRequire(import.meta.url);

type Json = Record<string, unknown>;

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? yamlFiles(path.join(dir, e.name)) : /\.ya?ml$/.test(e.name) ? [path.join(dir, e.name)] : [],
  );
}

function loadYaml(file: string): Json[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  if (!Array.isArray(docs)) throw new Error(`${file}: empty`);
  return docs.map((d, i) => {
    assert.deepEqual(d.errors, [], `${file} document ${i}: YAML errors`);
    const v = d.toJS() as unknown;
    assert.ok(v !== null && typeof v === 'object', `${file} document ${i} is not a mapping`);
    return v as Json;
  });
}

const serveCommand = () => {
  const cmd = buildProgram().commands.find((c) => c.name() === 'serve');
  assert.ok(cmd);
  return cmd;
};

/** The long flags `quorumkv serve` accepts, and the QKV_* variables its help names. */
function serveSurface(): { flags: Set<string>; env: Set<string> } {
  const cmd = serveCommand();
  const flags = new Set(cmd.options.map((o) => o.long).filter((l): l is string => l !== undefined));
  const env = new Set([...cmd.helpInformation().matchAll(/\b(QKV_[A-Z_]+)/g)].map((m) => m[1] as string));
  return { flags, env };
}

/** The variables a mode's node program reads: its --help (quorum, eventual) or its source (causal). */
function modeEnv(mode: string): Set<string> {
  const main = path.join(DIST, 'src/modes', mode, 'main.js');
  if (mode === 'causal') {
    const src = readFileSync(main, 'utf8');
    return new Set([...src.matchAll(/env\.([A-Z_]+)/g)].map((m) => m[1] as string));
  }
  const help = execFileSync(process.execPath, [main, '--help'], { encoding: 'utf8' });
  return new Set([...help.matchAll(/\[([A-Z_]+)\]/g)].map((m) => m[1] as string));
}

/** Variables only the container uses (the health check), not the node program. */
const CONTAINER_ONLY = new Set(['QKV_HEALTH_URL', 'NODE_ENV', 'POD_NAMESPACE']);

function checkServeArgs(args: readonly string[], where: string): void {
  assert.equal(args[0], 'serve', `${where}: runs quorumkv serve`);
  const { flags } = serveSurface();
  for (const a of args.slice(1)) {
    if (a === '--') break;
    if (a.startsWith('--')) assert.ok(flags.has(a.split('=')[0] as string), `${where}: serve has no option ${a}`);
  }
}

describe('deploy manifests', () => {
  const deployDir = path.join(ROOT, 'deploy');
  const files = yamlFiles(deployDir);

  test('every YAML file parses', () => {
    assert.ok(files.length >= 7, `found ${files.length} YAML files`);
    for (const f of files) assert.ok(loadYaml(f).length > 0, f);
  });

  test('Kubernetes manifests validate against the API schemas', () => {
    const k8s = files.filter((f) => f.includes(`${path.sep}k8s${path.sep}`));
    const kinds: string[] = [];
    for (const f of k8s) {
      for (const doc of loadYaml(f)) {
        const id = `${String(doc.apiVersion)}/${String(doc.kind)}`;
        kinds.push(String(doc.kind));
        const model =
          id === 'apps/v1/StatefulSet'
            ? new StatefulSet(doc as ConstructorParameters<typeof StatefulSet>[0])
            : id === 'v1/Service'
              ? new Service(doc as ConstructorParameters<typeof Service>[0])
              : id === 'policy/v1/PodDisruptionBudget'
                ? new PodDisruptionBudget(doc as ConstructorParameters<typeof PodDisruptionBudget>[0])
                : undefined;
        assert.ok(model !== undefined, `${f}: unexpected ${id}`);
        assert.doesNotThrow(() => model.validate(), `${f}: ${id} is invalid`);
      }
    }
    assert.deepEqual(kinds.sort(), ['PodDisruptionBudget', 'Service', 'Service', 'StatefulSet']);
    // The validator bites: a wrong type is refused.
    const bad = new StatefulSet({
      metadata: { name: 'x' },
      spec: { selector: {}, serviceName: 'x', replicas: 'three' as unknown as number, template: {} },
    });
    assert.throws(() => bad.validate(), /replicas/);
  });

  test('the StatefulSet, Services and PodDisruptionBudget agree, and the nodes configure as a 3-node cluster', () => {
    const docs = yamlFiles(path.join(deployDir, 'k8s')).flatMap(loadYaml);
    const sts = docs.find((d) => d.kind === 'StatefulSet') as unknown as StatefulSet;
    const services = docs.filter((d) => d.kind === 'Service') as unknown as Service[];
    const pdb = docs.find((d) => d.kind === 'PodDisruptionBudget') as unknown as PodDisruptionBudget;
    const spec = sts.spec;
    assert.ok(spec !== undefined);
    const replicas = spec.replicas ?? 1;
    assert.equal(replicas, 3);
    assert.equal(spec.podManagementPolicy, 'Parallel', 'ordered start-up would wait for a ready pod 0 forever');
    const labels = spec.template.metadata?.labels ?? {};
    assert.deepEqual(spec.selector.matchLabels, labels);
    const headless = services.find((s) => s.metadata?.name === spec.serviceName);
    assert.ok(headless?.spec !== undefined, 'serviceName names a Service');
    assert.equal(headless.spec.clusterIP, 'None', 'a headless Service');
    assert.equal(headless.spec.publishNotReadyAddresses, true, 'peers find each other before they are ready');
    for (const s of services)
      assert.deepEqual(s.spec?.selector, labels, `Service ${s.metadata?.name} selects the pods`);
    // A majority of the voters stays up through voluntary disruptions.
    assert.equal(pdb.spec?.minAvailable, Math.floor(replicas / 2) + 1);
    assert.deepEqual(pdb.spec?.selector?.matchLabels, labels);

    const c = spec.template.spec?.containers[0];
    assert.ok(c !== undefined);
    checkServeArgs(c.args ?? [], 'StatefulSet');
    assert.ok(c.args?.includes('--id-from-hostname'), 'ids from the pod ordinal');
    const ports = new Map((c.ports ?? []).map((p) => [p.name, p.containerPort]));
    assert.equal(c.livenessProbe?.httpGet?.path, '/health');
    assert.equal(c.readinessProbe?.httpGet?.path, '/ready');
    assert.ok(ports.has(String(c.livenessProbe?.httpGet?.port)) && ports.has(String(c.readinessProbe?.httpGet?.port)));
    // Per-pod volumes: the data mount is a claim template; every other mount is a pod volume.
    const claims = new Set((spec.volumeClaimTemplates ?? []).map((v) => v.metadata?.name));
    const volumes = new Set((spec.template.spec?.volumes ?? []).map((v) => v.name));
    for (const m of c.volumeMounts ?? []) assert.ok(claims.has(m.name) || volumes.has(m.name), `volume ${m.name}`);
    const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));
    assert.equal(
      (c.volumeMounts ?? []).find((m) => m.name === [...claims][0])?.mountPath,
      env.QKV_DATA_DIR,
      'the data directory is on the claim',
    );
    const secretVolumes = (spec.template.spec?.volumes ?? []).filter((v) => v.secret !== undefined);
    assert.ok(secretVolumes.length >= 1, 'the cluster secret comes from a Secret');
    const { env: known } = serveSurface();
    for (const name of Object.keys(env)) {
      assert.ok(known.has(name) || CONTAINER_ONLY.has(name), `serve does not read ${name}`);
    }
    // Each pod's configuration, as `serve` parses it (POD_NAMESPACE expanded as the kubelet does).
    for (let ordinal = 0; ordinal < replicas; ordinal++) {
      const podEnv: Record<string, string> = { HOSTNAME: `${sts.metadata?.name}-${ordinal}` };
      for (const [k, v] of Object.entries(env)) {
        if (v !== undefined) podEnv[k] = v.replaceAll('$(POD_NAMESPACE)', 'prod');
      }
      const cfg = parseServeConfig({ idFromHostname: true }, podEnv).node;
      assert.equal(cfg.id, ordinal + 1);
      assert.deepEqual([...cfg.peers.keys()].sort(), [1, 2, 3]);
      const self = cfg.peers.get(cfg.id);
      assert.equal(self?.host, `${sts.metadata?.name}-${ordinal}.${spec.serviceName}.prod.svc.cluster.local`);
      assert.equal(self?.port, ports.get('peer'));
      assert.equal(cfg.peerHttp.get(cfg.id === 1 ? 2 : 1)?.port, ports.get('http'));
      assert.equal(cfg.http.port, ports.get('http'));
      assert.equal(cfg.peerListenHost, '0.0.0.0');
      assert.ok(cfg.clusterSecretFile?.startsWith('/etc/quorumkv/secret/'));
      assert.ok(cfg.tls?.ca !== undefined, 'mutual TLS between the pods');
    }
  });

  test('compose files validate against the compose-spec schema and configure our CLI', () => {
    const schemaFile = path.join(path.dirname(require.resolve('dclint/package.json')), 'schemas/compose.schema.json');
    // A draft-07 schema (ajv's default draft); its "$schema" spells the meta-schema's URL with https.
    const { $schema: _draft, ...schema } = JSON.parse(readFileSync(schemaFile, 'utf8')) as Json;
    const ajv = new Ajv({ allErrors: true, strict: false });
    const validate = ajv.compile(schema);
    // The validator bites: an unknown service field is refused.
    assert.equal(validate({ services: { a: { image: 'x', bogus: 1 } } }), false);

    const compose = files.filter((f) => f.includes(`${path.sep}compose${path.sep}`));
    const modes = new Set<string>();
    for (const f of compose) {
      const [doc] = loadYaml(f);
      assert.ok(validate(doc), `${f}: ${ajv.errorsText(validate.errors)}`);
      const services = (doc as { services: Record<string, Json> }).services;
      for (const [name, svc] of Object.entries(services)) {
        if (name === 'secret') continue;
        const command = svc.command as string[];
        const env = svc.environment as Record<string, string>;
        checkServeArgs(command, `${f} ${name}`);
        const modeAt = command.indexOf('--mode');
        const mode = modeAt < 0 ? 'raft' : (command[modeAt + 1] as string);
        modes.add(mode === 'raft' && env.QKV_APP === 'chat' ? 'chat' : mode);
        const known = mode === 'raft' ? serveSurface().env : new Set([...modeEnv(mode), ...serveSurface().env]);
        for (const k of Object.keys(env)) assert.ok(known.has(k) || CONTAINER_ONLY.has(k), `${f} ${name}: ${k}`);
        // The addresses a node is given name services of the same file, on the ports they listen on.
        const listens = (svc: string) => {
          const e = (services[svc]?.environment ?? {}) as Record<string, string>;
          return e.SOCKET_ADDRESS?.split(':')[1] ?? e.PORT;
        };
        const names = (list: string) =>
          list.split(',').map((a) => {
            const [host, port] = a.split(':') as [string, string];
            assert.ok(host in services, `${f} ${name}: ${host} is not a service`);
            assert.equal(listens(host), port, `${f} ${name}: ${host} listens on ${listens(host)}, not ${port}`);
            return host;
          });
        if (mode === 'causal') {
          assert.ok(isSocketAddress(env.SOCKET_ADDRESS), `${f} ${name}: SOCKET_ADDRESS`);
          assert.ok(names(env.VIEW ?? '').includes(name), `${f} ${name}: the view includes the replica itself`);
        }
        if (mode === 'eventual') assert.ok(!names(env.PEERS ?? '').includes(name));
        if (mode === 'quorum' && env.ROLE === 'leader') assert.equal(names(env.FOLLOWERS ?? '').length, 5);
        if (mode === 'quorum' && env.ROLE === 'follower') assert.deepEqual(names(env.LEADER ?? ''), ['leader']);
        if (mode === 'raft') {
          const cfg = parseServeConfig({}, env).node;
          assert.deepEqual([...cfg.peers.keys()].sort(), [1, 2, 3], `${f} ${name}`);
          assert.equal(cfg.peers.get(cfg.id)?.host, name, `${f} ${name}: its own peer entry is its service name`);
        }
      }
    }
    assert.deepEqual([...modes].sort(), ['causal', 'chat', 'eventual', 'quorum', 'raft']);
    // The quorum file: a leader and five followers, W, MIN_DELAY and MAX_DELAY from the environment.
    const [q] = loadYaml(path.join(deployDir, 'compose/quorum.yml'));
    const qs = (q as { services: Record<string, { environment: Record<string, string> }> }).services;
    const roles = Object.values(qs).map((s) => s.environment?.ROLE);
    assert.equal(roles.filter((r) => r === 'leader').length, 1);
    assert.equal(roles.filter((r) => r === 'follower').length, 5);
    for (const s of Object.values(qs)) {
      if (s.environment?.ROLE === undefined) continue;
      for (const v of ['WRITE_QUORUM', 'MIN_DELAY', 'MAX_DELAY']) assert.match(s.environment[v] ?? '', /^\$\{/);
    }
  });

  test('the Dockerfile: multi-stage, non-root, data volume, health check, and a command the CLI runs', async () => {
    const text = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
    const lines = text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    const instr = (name: string) => lines.filter((l) => l.toUpperCase().startsWith(`${name} `));
    assert.ok(instr('FROM').length >= 2, 'multi-stage');
    assert.ok(
      instr('FROM').every((l) => /node:20[\w.-]*slim/.test(l)),
      'node 20 slim base',
    );
    assert.ok(instr('COPY').some((l) => l.includes('--from=build')));
    const users = instr('USER');
    assert.ok(users.length > 0 && !/root|\b0\b/.test(users.at(-1) as string), 'runs as a non-root user');
    assert.match(instr('VOLUME').join(' '), /\/data/);
    assert.match(text, /better-sqlite3 --build-from-source/);
    const entry = JSON.parse((instr('ENTRYPOINT')[0] as string).slice('ENTRYPOINT '.length)) as string[];
    assert.equal(entry[1], '/app/dist/src/cli/main.js');
    assert.ok(existsSync(path.join(DIST, 'src/cli/main.js')));
    const cmd = JSON.parse((instr('CMD')[0] as string).slice('CMD '.length)) as string[];
    checkServeArgs(cmd, 'Dockerfile CMD');
    const { env: known } = serveSurface();
    for (const m of instr('ENV')
      .join(' ')
      .matchAll(/\b(QKV_[A-Z_]+)=/g)) {
      assert.ok(known.has(m[1] as string) || CONTAINER_ONLY.has(m[1] as string), `serve does not read ${m[1]}`);
    }
    // Every COPY source of the build stage exists and is not excluded by .dockerignore.
    const ignored = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.startsWith('#'));
    for (const l of instr('COPY').filter((c) => !c.includes('--from'))) {
      for (const src of l.split(/\s+/).slice(1, -1)) {
        assert.ok(existsSync(path.join(ROOT, src)), `COPY ${src}`);
        assert.ok(!ignored.includes(src), `${src} is in .dockerignore`);
      }
    }

    // The health check's command against a server answering 200, then 503, then nothing.
    const health = instr('HEALTHCHECK')[0] as string;
    const argv = JSON.parse(health.slice(health.indexOf('CMD') + 4)) as string[];
    assert.equal(argv[0], 'node');
    let status = 200;
    const srv = http.createServer((req, res) => {
      res.statusCode = req.url === '/health' ? status : 404;
      res.end('{}');
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/health`;
    const run = (u: string) =>
      new Promise<number | null>((resolve) => {
        const p = spawn(process.execPath, argv.slice(1), { env: { ...process.env, QKV_HEALTH_URL: u } });
        p.on('exit', (code) => resolve(code));
      });
    try {
      assert.equal(await run(url), 0);
      status = 503;
      assert.equal(await run(url), 1);
    } finally {
      srv.close();
    }
    assert.equal(await run(url), 1, 'nothing listening');
  });

  test('--id-from-hostname takes the pod ordinal', () => {
    assert.equal(idFromHostname('quorumkv-0'), 1);
    assert.equal(idFromHostname('qkv-12.qkv-peers.ns.svc.cluster.local'), 13);
    assert.throws(() => idFromHostname('quorumkv'), ConfigError);
    assert.throws(() => idFromHostname('node-x'), /does not end in -<ordinal>/);
    assert.equal(parseServeConfig({}, { QKV_ID_FROM_HOSTNAME: '1', HOSTNAME: 'a-2' }).node.id, 3);
    assert.throws(() => parseServeConfig({ id: '1', idFromHostname: true }, { HOSTNAME: 'a-0' }), /not both/);
    assert.equal(parseServeConfig({ id: '1', peerListen: '0.0.0.0' }, {}).node.peerListenHost, '0.0.0.0');
  });
});
