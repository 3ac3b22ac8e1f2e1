/**
 * `quorumkv secret create|rotate` (the cluster secret file, see docs/security.md) and `quorumkv admin`, which
 * sends a signed `/admin/*` request — what a node listening beyond loopback asks for.
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import {
  PeerAuth,
  PeerAuthError,
  createSecretFile,
  loadSecretFile,
  pathAndQueryOf,
  rotateSecretFile,
} from '../net/peer-auth.js';

export interface SecretIO {
  out(line: string): void;
  err(line: string): void;
  readonly env: Readonly<Record<string, string | undefined>>;
  exit(code: number): void;
}

export function addSecretCommands(program: Command, io: SecretIO): void {
  const secret = program
    .command('secret')
    .description('create or rotate the cluster secret file every node of a cluster shares (docs/security.md)');
  secret
    .command('create <file>')
    .description('write a new secret file (32 random bytes, hex, mode 0600); refuses to overwrite one')
    .action((file: string) => {
      try {
        const abs = createSecretFile(file);
        const { keys } = loadSecretFile(abs);
        io.out(`created ${abs} (secret ${keys.fingerprints()[0]}); give every node --cluster-secret-file ${abs}`);
        io.exit(0);
      } catch (err) {
        io.err(`error: ${(err as Error).message}`);
        io.exit(1);
      }
    });
  secret
    .command('rotate <file>')
    .description(
      'one rotation step, each followed by a rolling restart of every node: add (a new secret, accepted but ' +
        'not yet signing), promote (the newest secret signs), retire (only the signing secret is kept)',
    )
    .addOption(new Option('--step <step>', 'rotation step').choices(['add', 'promote', 'retire']).makeOptionMandatory())
    .action((file: string, flags: { step: 'add' | 'promote' | 'retire' }) => {
      try {
        const prints = rotateSecretFile(file, flags.step);
        io.out(
          `${file}: signing ${prints[0]}${prints.length > 1 ? `, also accepted ${prints.slice(1).join(', ')}` : ''}`,
        );
        io.out('now restart every node, one at a time, before the next step');
        io.exit(0);
      } catch (err) {
        io.err(`error: ${(err as Error).message}`);
        io.exit(1);
      }
    });

  program
    .command('admin <url> <action> [json]')
    .description(
      'POST <url>/admin/<action> (fail, recover, faults, partition, heal...) with an optional JSON body, ' +
        'signed with the cluster secret when one is given (nodes listening beyond loopback require it)',
    )
    .option('--cluster-secret-file <file>', 'the cluster secret file; env QKV_CLUSTER_SECRET_FILE')
    .option('--timeout-ms <n>', 'time limit in ms', '10000')
    .action(async (url: string, action: string, json: string | undefined, flags: Record<string, string>) => {
      const file = flags.clusterSecretFile ?? io.env.QKV_CLUSTER_SECRET_FILE;
      try {
        if (json !== undefined) JSON.parse(json);
        const auth =
          file === undefined || file === ''
            ? PeerAuth.insecure('cli')
            : new PeerAuth({ id: 'cli', keys: loadSecretFile(file).keys });
        const target = `${url.replace(/\/+$/, '')}/admin/${action.replace(/^\/+/, '')}`;
        const headers: Record<string, string> = auth.signHeaders('POST', pathAndQueryOf(target), json);
        if (json !== undefined) headers['content-type'] = 'application/json';
        const res = await fetch(target, {
          method: 'POST',
          headers,
          body: json,
          signal: AbortSignal.timeout(Number(flags.timeoutMs)),
        });
        const text = await res.text();
        (res.ok ? io.out : io.err)(`${res.status} ${text}`);
        io.exit(res.ok ? 0 : 1);
      } catch (err) {
        io.err(`error: ${err instanceof PeerAuthError || err instanceof SyntaxError ? err.message : String(err)}`);
        io.exit(1);
      }
    });
}
