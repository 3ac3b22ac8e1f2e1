/**
 * Users, roles and auth from the command line (raft mode, key-value app):
 *
 *   quorumkv user add NAME [--password PW | --no-password]   (asks twice on a terminal, else reads stdin's first line)
 *   quorumkv user del|get NAME,  user list,  user passwd NAME [--password PW],  user grant|revoke NAME ROLE
 *   quorumkv role add|del|get NAME,  role list,  role grant ROLE --prefix P [--read] [--write],  role revoke ROLE --prefix P
 *   quorumkv auth enable|disable|status|token
 *
 * Every one of them, and every key-value command, takes `--user NAME[:PASSWORD]` (the password is asked
 * for on a terminal when absent) or `--token T`, or the environment's QKV_USER / QKV_TOKEN.
 * `quorumkv cluster --auth` calls `bootstrapClusterAuth` once the cluster is ready.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { AuthAdmin, enableAuthWithRoot } from '../client/auth.js';
import { Client } from '../client/client.js';
import type { ClientAuth } from '../client/types.js';
import { guarded, makeClient, type CommonFlags, type KvIO } from './kv-commands.js';

export interface AuthCliIO extends KvIO {
  readonly env: Readonly<Record<string, string | undefined>>;
  exit(code: number): void;
  /**
   * Asks for a secret without echoing it; undefined when there is no terminal to ask on. Default: the
   * process's terminal.
   */
  readSecret?(prompt: string): Promise<string | undefined>;
  /** The first line of standard input when it is not a terminal (default: the process's stdin). */
  readStdinLine?(): Promise<string | undefined>;
}

/** The name of the root credential file `quorumkv cluster --auth` writes in the data directory. */
export const ROOT_CREDENTIAL_FILE = 'root.credential';

/** `--user` and `--token` on a command that talks to a cluster. */
export function addCredentialOptions(cmd: Command): Command {
  return cmd
    .option('--user <name[:password]>', 'authenticate as this user (asks for the password if absent); env QKV_USER')
    .option('--token <token>', 'authenticate with this token (quorumkv auth token); env QKV_TOKEN');
}

/** Reads a secret from the terminal with echo off; undefined without a terminal. */
export async function readSecretFromTty(prompt: string): Promise<string | undefined> {
  const stdin = process.stdin;
  if (stdin.isTTY !== true) return undefined;
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  stdin.setEncoding('utf8');
  return new Promise<string>((resolve, reject) => {
    let text = '';
    const finish = (): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
    };
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          finish();
          resolve(text);
          return;
        }
        if (ch === '\u0003') {
          finish();
          reject(new Error('interrupted'));
          return;
        }
        if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1);
        else text += ch;
      }
    };
    stdin.on('data', onData);
  });
}

/** The first line of a piped standard input (undefined on a terminal or an empty input). */
export async function readStdinLine(): Promise<string | undefined> {
  if (process.stdin.isTTY === true) return undefined;
  let text = '';
  for await (const chunk of process.stdin) {
    text += (chunk as Buffer).toString('utf8');
    if (text.includes('\n')) break;
  }
  const line = text.split(/\r?\n/)[0];
  return line === undefined || line === '' ? undefined : line;
}

/**
 * The credentials of a command's flags or environment: `--token` / QKV_TOKEN, else `--user` / QKV_USER
 * (`NAME:PASSWORD`, or `NAME` with the password asked for on the terminal). Flags win over the environment.
 */
export async function resolveCredentials(
  flags: { user?: string; token?: string },
  io: Pick<AuthCliIO, 'env' | 'readSecret'>,
): Promise<ClientAuth | undefined> {
  const token = flags.token ?? (flags.user === undefined ? io.env.QKV_TOKEN : undefined);
  if (token !== undefined && token !== '') return { token };
  const spec = flags.user ?? io.env.QKV_USER;
  if (spec === undefined || spec === '') return undefined;
  const colon = spec.indexOf(':');
  if (colon === 0) throw new TypeError('--user: expected NAME or NAME:PASSWORD');
  if (colon > 0) return { user: spec.slice(0, colon), password: spec.slice(colon + 1) };
  const password = await (io.readSecret ?? readSecretFromTty)(`password for ${spec}: `);
  if (password === undefined) {
    throw new TypeError(`--user ${spec}: no password given (use ${spec}:PASSWORD, or run on a terminal to be asked)`);
  }
  return { user: spec, password };
}

/**
 * Installs the hook that turns `--user` / `--token` (or QKV_USER / QKV_TOKEN) into the `auth` option of
 * every command that has them, before the command runs.
 */
export function installCredentialHook(program: Command, io: AuthCliIO): void {
  program.hook('preAction', async (_root, action) => {
    if (!action.options.some((o) => o.long === '--token')) return;
    const opts = action.opts<{ user?: string; token?: string }>();
    let auth: ClientAuth | undefined;
    try {
      auth = await resolveCredentials(opts, io);
    } catch (err) {
      action.error(`error: ${(err as Error).message}`, { exitCode: 2, code: 'quorumkv.credentials' });
    }
    if (auth !== undefined) action.setOptionValue('auth', auth);
  });
}

type Flags = CommonFlags;

/** The password of a new user (or a new password): the flag, else asked twice on a terminal, else stdin. */
async function newPassword(io: AuthCliIO, given: string | undefined, name: string): Promise<string> {
  if (given !== undefined) return given;
  const ask = io.readSecret ?? readSecretFromTty;
  const first = await ask(`password for ${name}: `);
  if (first !== undefined) {
    const again = await ask('again: ');
    if (again !== first) throw new TypeError('the passwords differ');
    return first;
  }
  const line = await (io.readStdinLine ?? readStdinLine)();
  if (line === undefined) throw new TypeError('no password: give --password, type it on a terminal or pipe it in');
  return line;
}

function permissionText(p: { read: boolean; write: boolean }): string {
  return p.read && p.write ? 'readwrite' : p.read ? 'read' : 'write';
}

/** `user`, `role` and `auth` commands; `withEndpoints` adds the endpoint and credential options. */
export function addAuthCommands(program: Command, io: AuthCliIO, withEndpoints: (cmd: Command) => Command): void {
  installCredentialHook(program, io);
  const run = (flags: Flags, fn: (admin: AuthAdmin) => Promise<void>): Promise<void> =>
    guarded(io, () => fn(new AuthAdmin(makeClient(flags)))).then((code) => io.exit(code));

  const user = program.command('user').description('manage the users of a cluster (auth; root only once auth is on)');
  withEndpoints(user.command('add <name>'))
    .description('add a user (asks for its password on a terminal, or reads it from stdin)')
    .option('--password <pw>', 'its password (beware: visible in the process list)')
    .option('--no-password', 'no password: the user authenticates with a client certificate (CN = name)')
    .action((name: string, flags: Flags & { password?: string | false }) =>
      run(flags, async (admin) => {
        const pw = flags.password === false ? undefined : await newPassword(io, flags.password, name);
        await admin.addUser(name, pw);
        io.out(`User ${name} created`);
      }),
    );
  withEndpoints(user.command('del <name>'))
    .description('delete a user (and its tokens)')
    .action((name: string, flags: Flags) =>
      run(flags, async (admin) => {
        await admin.deleteUser(name);
        io.out(`User ${name} deleted`);
      }),
    );
  withEndpoints(user.command('list'))
    .description('every user: "name<TAB>roles"')
    .action((flags: Flags) =>
      run(flags, async (admin) => {
        for (const u of await admin.users()) io.out(`${u.name}\t${u.roles.length > 0 ? u.roles.join(',') : '-'}`);
      }),
    );
  withEndpoints(user.command('get <name>'))
    .description('a user as JSON: name, roles, whether it has a password')
    .action((name: string, flags: Flags) =>
      run(flags, async (admin) => io.out(JSON.stringify(await admin.user(name)))),
    );
  withEndpoints(user.command('passwd <name>'))
    .description("change a user's password (its tokens end)")
    .option('--password <pw>', 'the new password (beware: visible in the process list)')
    .action((name: string, flags: Flags & { password?: string }) =>
      run(flags, async (admin) => {
        await admin.setPassword(name, await newPassword(io, flags.password, name));
        io.out(`Password of ${name} updated`);
      }),
    );
  withEndpoints(user.command('grant <name> <role>'))
    .description('grant a role to a user')
    .action((name: string, role: string, flags: Flags) =>
      run(flags, async (admin) => {
        await admin.grantRole(name, role);
        io.out(`Role ${role} granted to ${name}`);
      }),
    );
  withEndpoints(user.command('revoke <name> <role>'))
    .description('revoke a role from a user')
    .action((name: string, role: string, flags: Flags) =>
      run(flags, async (admin) => {
        await admin.revokeRole(name, role);
        io.out(`Role ${role} revoked from ${name}`);
      }),
    );

  const role = program.command('role').description('manage roles and their permissions on key prefixes');
  withEndpoints(role.command('add <name>'))
    .description('add a role (no permissions yet)')
    .action((name: string, flags: Flags) =>
      run(flags, async (admin) => {
        await admin.addRole(name);
        io.out(`Role ${name} created`);
      }),
    );
  withEndpoints(role.command('del <name>'))
    .description('delete a role (every user loses it)')
    .action((name: string, flags: Flags) =>
      run(flags, async (admin) => {
        await admin.deleteRole(name);
        io.out(`Role ${name} deleted`);
      }),
    );
  withEndpoints(role.command('list'))
    .description('every role, one per line')
    .action((flags: Flags) =>
      run(flags, async (admin) => {
        for (const r of await admin.roles()) io.out(r.name);
      }),
    );
  withEndpoints(role.command('get <name>'))
    .description('a role\'s permissions: "prefix<TAB>read|write|readwrite" per line ("" is every key)')
    .action((name: string, flags: Flags) =>
      run(flags, async (admin) => {
        for (const p of (await admin.role(name)).permissions) {
          io.out(`${JSON.stringify(p.prefix)}\t${permissionText(p)}`);
        }
      }),
    );
  withEndpoints(role.command('grant <role>'))
    .description('give a role read and/or write on the keys starting with a prefix')
    .requiredOption('--prefix <p>', 'key prefix ("" for every key)')
    .option('--read', 'read (get, list, txn compares and gets)')
    .option('--write', 'write (put, delete, txn puts and deletes)')
    .action((name: string, flags: Flags & { prefix: string; read?: boolean; write?: boolean }) =>
      run(flags, async (admin) => {
        const read = flags.read === true;
        const write = flags.write === true;
        if (!read && !write) throw new TypeError('role grant: give --read, --write or both');
        await admin.grantPermission(name, { prefix: flags.prefix, read, write });
        io.out(`Role ${name}: ${permissionText({ read, write })} on prefix ${JSON.stringify(flags.prefix)}`);
      }),
    );
  withEndpoints(role.command('revoke <role>'))
    .description("remove a role's permission on a prefix")
    .requiredOption('--prefix <p>', 'the prefix the permission was granted on')
    .action((name: string, flags: Flags & { prefix: string }) =>
      run(flags, async (admin) => {
        await admin.revokePermission(name, flags.prefix);
        io.out(`Role ${name}: permission on prefix ${JSON.stringify(flags.prefix)} revoked`);
      }),
    );

  const auth = program.command('auth').description('turn authentication on or off, show it, get a token');
  withEndpoints(auth.command('enable'))
    .description('turn auth on (needs a user named root; it gets the root role)')
    .action((flags: Flags) =>
      run(flags, async (admin) => {
        await admin.enable();
        io.out('Authentication enabled');
      }),
    );
  withEndpoints(auth.command('disable'))
    .description('turn auth off (root only; every token ends)')
    .action((flags: Flags) =>
      run(flags, async (admin) => {
        await admin.disable();
        io.out('Authentication disabled');
      }),
    );
  withEndpoints(auth.command('status'))
    .description('whether auth is on, and who the given credentials are')
    .action((flags: Flags) =>
      run(flags, async (admin) => {
        const s = await admin.status();
        io.out(`Authentication ${s.enabled ? 'enabled' : 'disabled'}`);
        if (s.user !== undefined) io.out(`user ${s.user}\troles ${(s.roles ?? []).join(',') || '-'}`);
      }),
    );
  withEndpoints(auth.command('token'))
    .description('print a bearer token for --user (for --token or QKV_TOKEN)')
    .action((flags: Flags) =>
      run(flags, async (admin) => {
        const a = flags.auth;
        if (a === undefined || !('user' in a)) throw new TypeError('auth token: give --user NAME[:PASSWORD]');
        io.out((await admin.authenticate(a.user, a.password)).token);
      }),
    );
}

/**
 * After `quorumkv cluster --auth` is ready: writes a random root password to `<data>/root.credential`
 * (mode 0600), creates the root user with it and turns auth on. A cluster whose auth is already on is
 * left alone (its credential file, if any, still holds the password). `ca`: the cluster's CA, for HTTPS.
 */
export async function bootstrapClusterAuth(
  urls: readonly string[],
  dataDir: string,
  io: KvIO,
  ca?: string | Buffer,
): Promise<void> {
  const file = path.join(dataDir, ROOT_CREDENTIAL_FILE);
  const admin = new AuthAdmin(new Client({ endpoints: [...urls], ...(ca === undefined ? {} : { ca }) }));
  if ((await admin.status()).enabled) {
    io.out(`auth is already enabled; the root credential ${existsSync(file) ? `is in ${file}` : 'was not made here'}`);
  } else {
    const password = randomBytes(24).toString('base64url');
    writeFileSync(file, password + '\n', { mode: 0o600 });
    chmodSync(file, 0o600);
    await enableAuthWithRoot(admin, password);
    io.out(`auth enabled: the root user's password is in ${file} (mode 0600)`);
  }
  io.out(`  use it: quorumkv user list --user "root:$(cat ${file})"`);
  io.out(`      or: export QKV_USER="root:$(cat ${file})"`);
}
