/**
 * `quorumkv certs ca|node|client`: the certificates of a real deployment (docs/security.md, "TLS and
 * certificates"). A CA directory holds `ca.pem` and `ca-key.pem`; a node or client directory gets
 * `<name>.pem`, `<name>-key.pem` (mode 0600) and a copy of `ca.pem`.
 */
import type { Command } from 'commander';
import {
  DEFAULT_CA_DAYS,
  DEFAULT_CERT_DAYS,
  checkCertName,
  copyCaCert,
  createCa,
  issueClientCert,
  issueNodeCert,
  nodeAltNames,
  readCa,
  writePair,
} from '../net/certs.js';

export interface CertsIO {
  out(line: string): void;
  err(line: string): void;
  exit(code: number): void;
}

function days(v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--days: expected a positive integer, got "${v}"`);
  return n;
}

async function guarded(io: CertsIO, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
    io.exit(0);
  } catch (err) {
    io.err(`error: ${(err as Error).message}`);
    io.exit(1);
  }
}

export function addCertsCommands(program: Command, io: CertsIO): void {
  const certs = program
    .command('certs')
    .description('create a certificate authority and node or client certificates for TLS (docs/security.md)');

  certs
    .command('ca')
    .description('create a certificate authority: <out>/ca.pem (give it to every node and client) and <out>/ca-key.pem')
    .requiredOption('--out <dir>', 'directory to write to (created if absent)')
    .option('--cn <name>', 'the CA common name', 'quorumkv CA')
    .option('--days <n>', `validity in days (default ${DEFAULT_CA_DAYS})`)
    .option('--force', 'replace an existing CA (every certificate it issued stops being trusted)')
    .action((flags: { out: string; cn: string; days?: string; force?: boolean }) =>
      guarded(io, async () => {
        const pair = await createCa({ commonName: flags.cn, days: days(flags.days, DEFAULT_CA_DAYS) });
        const files = writePair(flags.out, 'ca', pair, flags.force === true);
        io.out(`created ${files.cert} and ${files.key} (mode 0600: keep it where certificates are issued)`);
      }),
    );

  certs
    .command('node')
    .description(
      'issue a node certificate (server and client authentication; valid for 127.0.0.1, ::1, localhost and ' +
        'every --host): <out>/<name>.pem, <out>/<name>-key.pem and a copy of ca.pem',
    )
    .requiredOption('--ca <dir>', 'the CA directory (ca.pem and ca-key.pem)')
    .requiredOption('--name <name>', 'the node name (certificate common name and file name), e.g. node-1')
    .option('--host <list>', 'comma-separated host names and IP addresses the node is reached at', '')
    .requiredOption('--out <dir>', 'directory to write to (created if absent)')
    .option('--days <n>', `validity in days (default ${DEFAULT_CERT_DAYS})`)
    .option('--force', 'replace an existing certificate of that name')
    .action((flags: { ca: string; name: string; host: string; out: string; days?: string; force?: boolean }) =>
      guarded(io, async () => {
        const name = checkCertName(flags.name, '--name');
        const hosts = flags.host
          .split(',')
          .map((h) => h.trim())
          .filter((h) => h.length > 0);
        const sans = nodeAltNames(hosts);
        const pair = await issueNodeCert(readCa(flags.ca), { name, hosts, days: days(flags.days, DEFAULT_CERT_DAYS) });
        const files = writePair(flags.out, name, pair, flags.force === true);
        const ca = copyCaCert(flags.ca, flags.out);
        io.out(`created ${files.cert} and ${files.key} for ${sans.map((s) => s.value).join(', ')}`);
        io.out(`serve with: --tls-cert ${files.cert} --tls-key ${files.key} --tls-ca ${ca}`);
      }),
    );

  certs
    .command('client')
    .description(
      'issue a client certificate for a user (client authentication only; common name = the user name): ' +
        '<out>/<name>.pem, <out>/<name>-key.pem and a copy of ca.pem',
    )
    .requiredOption('--ca <dir>', 'the CA directory (ca.pem and ca-key.pem)')
    .requiredOption('--name <user>', 'the user name')
    .requiredOption('--out <dir>', 'directory to write to (created if absent)')
    .option('--days <n>', `validity in days (default ${DEFAULT_CERT_DAYS})`)
    .option('--force', 'replace an existing certificate of that name')
    .action((flags: { ca: string; name: string; out: string; days?: string; force?: boolean }) =>
      guarded(io, async () => {
        const name = checkCertName(flags.name, '--name');
        const pair = await issueClientCert(readCa(flags.ca), { name, days: days(flags.days, DEFAULT_CERT_DAYS) });
        const files = writePair(flags.out, name, pair, flags.force === true);
        const ca = copyCaCert(flags.ca, flags.out);
        io.out(`created ${files.cert} and ${files.key} for user ${name}`);
        io.out(`use with: --cacert ${ca} --cert ${files.cert} --key ${files.key}`);
      }),
    );
}
