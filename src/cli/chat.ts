/**
 * `quorumkv chat`: an interactive chat client for the terminal, also driven line by line through a pipe.
 * Plain lines post to the current room through the ChatClient's outbox (so what is typed while the cluster
 * has no quorum is delivered later, exactly once); the room's messages arrive through its stream; a status
 * line is printed whenever the node in use, a failover or the lack of a quorum changes.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Writable, type Readable } from 'node:stream';
import type { Command } from 'commander';
import { ChatClient } from '../client/chat.js';
import type { ChatStream } from '../client/chat-stream.js';
import { ChatNotFoundError, ConflictError, type ChatMessage } from '../client/chat-types.js';
import { KvError } from '../client/errors.js';
import { DEFAULT_ENDPOINTS } from './kv-commands.js';
import { addClientTlsOptions, resolveClientTls, type ClientTlsFlags } from './client-tls.js';
import type { CliIO } from './program.js';

/** CliIO plus where the lines come from (process.stdin by default; tests pass a stream). */
export interface ChatIO extends CliIO {
  readonly input?: Readable;
  /** Ends the session at once when aborted (queued messages are abandoned). */
  readonly signal?: AbortSignal;
}

interface ChatFlags extends ClientTlsFlags {
  endpoints: string;
  timeoutMs?: string;
  user?: string;
  password?: string;
  register?: boolean;
  room?: string;
  history: string;
}

const HELP = [
  'commands:',
  '  /register [user] [password]  create an account and log in',
  '  /login [user] [password]     log in (asks for what is missing)',
  '  /logout                      end the session',
  '  /join <room>                 join a room (created if it does not exist) and follow it',
  '  /rooms                       list the rooms: name, members, last seq',
  '  /quit                        leave (after the queued messages are delivered)',
  '  anything else                posts to the current room',
];

export function addChatCommand(program: Command, io: ChatIO): void {
  const cmd = program.command('chat');
  // --cacert, --cert, --key, --cluster-file (default ./data/chat/cluster.json): HTTPS chat clusters.
  addClientTlsOptions(cmd, io.env);
  cmd
    .description('interactive chat client for a chat cluster (reads commands and messages from stdin; /help)')
    .option(
      '-e, --endpoints <urls>',
      'comma-separated node URLs; env QKV_ENDPOINTS (default: the local cluster)',
      io.env.QKV_ENDPOINTS ?? DEFAULT_ENDPOINTS,
    )
    .option('--timeout-ms <n>', 'time limit of one HTTP attempt in ms')
    .option('--user <name>', 'log in as this user (asks for the password if --password is not given)')
    .option('--password <pw>', 'the password (beware: visible in the process list)')
    .option('--register', 'create the user first (an existing user is just logged in)')
    .option('--room <room>', 'join this room at start (created if it does not exist)')
    .option('--history <n>', 'messages of the room shown when joining it', '10')
    .action(async (flags: ChatFlags) => io.exit(await runChat(io, flags)));
}

function clock(ms: number): string {
  const d = new Date(ms);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

export function formatMessage(m: ChatMessage): string {
  return `[#${m.seq} ${clock(m.time)}] ${m.user}: ${m.text}`;
}

function describe(err: unknown): string {
  if (err instanceof KvError) return `${err.message}${err.status > 0 ? ` (HTTP ${err.status})` : ''}`;
  return err instanceof Error ? err.message : String(err);
}

export async function runChat(io: ChatIO, flags: ChatFlags): Promise<number> {
  const endpoints = flags.endpoints
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  const timeoutMs = flags.timeoutMs === undefined ? undefined : Number(flags.timeoutMs);
  const history = Number(flags.history);
  if (timeoutMs !== undefined && !(timeoutMs > 0)) {
    io.err(`error: --timeout-ms: expected a positive number, got "${flags.timeoutMs}"`);
    return 2;
  }
  if (!Number.isInteger(history) || history < 0) {
    io.err(`error: --history: expected a non-negative integer, got "${flags.history}"`);
    return 2;
  }
  let client: ChatClient;
  try {
    const resolved = resolveClientTls(
      endpoints,
      flags,
      flags.endpoints === DEFAULT_ENDPOINTS,
      path.join('data', 'chat', 'cluster.json'),
    );
    client = new ChatClient({
      endpoints: resolved.endpoints,
      ...resolved.tls,
      ...(timeoutMs === undefined ? {} : { timeoutMs, deadlineMs: Math.max(timeoutMs * 3, 5000) }),
    });
  } catch (err) {
    io.err(`error: ${describe(err)}`);
    return 2;
  }

  const input = io.input ?? process.stdin;
  const tty = input === process.stdin && process.stdin.isTTY === true && process.stdout.isTTY === true;
  let muted = false;
  // Terminal output that can be muted while a password is typed.
  const output = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (!muted) process.stdout.write(chunk);
      cb();
    },
  });
  Object.defineProperty(output, 'columns', { get: () => process.stdout.columns });
  const rl = createInterface({ input, ...(tty ? { output, terminal: true } : { terminal: false }) });
  const lines: string[] = [];
  let waiting: ((l: string | undefined) => void) | undefined;
  let ended = false;
  const feed = (l: string | undefined): void => {
    if (l === undefined) ended = true;
    const w = waiting;
    waiting = undefined;
    if (w !== undefined) w(l);
    else if (l !== undefined) lines.push(l);
  };
  rl.on('line', (l) => feed(l));
  rl.on('close', () => feed(undefined));
  const nextLine = (): Promise<string | undefined> => {
    const l = lines.shift();
    if (l !== undefined || ended) return Promise.resolve(l);
    return new Promise((r) => (waiting = r));
  };
  let quitting = false;
  let giveUp: () => void = () => undefined;
  const gaveUp = new Promise<void>((r) => (giveUp = r));
  rl.on('SIGINT', () => (quitting ? giveUp() : feed('/quit')));
  const abort = (): void => {
    quitting = true;
    giveUp();
    client.close();
    feed(undefined);
  };
  if (io.signal?.aborted === true) abort();
  io.signal?.addEventListener('abort', abort, { once: true });

  let hadError = false;
  const print = (line: string): void => {
    if (tty) output.write('\r\x1b[K');
    io.out(line);
    if (tty && !muted) rl.prompt(true);
  };
  const fail = (err: unknown): void => {
    hadError = true;
    if (tty) output.write('\r\x1b[K');
    io.err(`error: ${describe(err)}`);
    if (tty && !muted) rl.prompt(true);
  };
  const ask = async (question: string, hidden = false): Promise<string | undefined> => {
    if (tty) {
      rl.setPrompt(question);
      rl.prompt();
      muted = hidden;
    }
    const answer = await nextLine();
    if (tty) {
      if (hidden) process.stdout.write('\n');
      muted = false;
      rl.setPrompt('> ');
    }
    return answer?.trim();
  };

  // The status line: printed when it changes.
  let lastStatus = '';
  let talkingTo = '';
  let unavailable = false;
  const status = (s: string): void => {
    if (s === lastStatus) return;
    lastStatus = s;
    print(`-- ${s}`);
  };
  const noteEndpoint = (): void => {
    if (client.currentEndpoint === talkingTo) return;
    talkingTo = client.currentEndpoint;
    status(`talking to ${talkingTo}`);
  };
  client.on('failover', (f) => {
    if (!unavailable) status(`failover: ${f.from} -> ${f.to} (${f.reason})`);
  });
  client.on('unavailable', (u) => {
    unavailable = true;
    status(`no quorum or no node reachable (${u.reason}): messages wait in the outbox`);
  });
  client.on('available', (a) => {
    unavailable = false;
    status(`available again (${a.endpoint})`);
    noteEndpoint();
  });
  const postedUpTo = new Map<string, number>();
  client.on('queued', (e) => print(`(queued) ${e.text}`));
  client.on('delivered', (e, m) => {
    postedUpTo.set(m.room, Math.max(postedUpTo.get(m.room) ?? 0, m.seq));
    if (e.queued) print(`(delivered #${m.seq}) ${e.text}`);
    noteEndpoint();
  });
  client.on('failed', (e, err) => {
    hadError = true;
    print(`(not delivered: ${err.error}) ${e.text}`);
  });

  let room: string | undefined;
  let stream: ChatStream | undefined;

  const login = async (user: string | undefined, password: string | undefined, register: boolean): Promise<void> => {
    const u = user ?? (await ask('username: '));
    if (u === undefined || u === '') return;
    const pw = password ?? (await ask('password: ', true));
    if (pw === undefined) return;
    if (register) {
      try {
        await client.register(u, pw);
        print(`-- registered ${u}`);
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        print(`-- ${u}: ${err.error}; logging in`);
      }
    }
    await client.login(u, pw);
    print(`-- logged in as ${u}`);
    noteEndpoint();
  };

  const join = async (name: string): Promise<void> => {
    try {
      await client.joinRoom(name);
    } catch (err) {
      if (!(err instanceof ChatNotFoundError)) throw err;
      try {
        await client.createRoom(name);
        print(`-- created room ${name}`);
      } catch (e) {
        if (!(e instanceof ConflictError)) throw e;
        await client.joinRoom(name); // created meanwhile by someone else
      }
    }
    let last = 0;
    try {
      last = (await client.messages(name, { limit: 1, allowStale: true })).lastSeq;
    } catch {
      // the stream starts from the first message then
    }
    stream?.close();
    room = name;
    const s = client.stream(name, { after: Math.max(0, last - history) });
    stream = s;
    s.on('message', (m) => print(formatMessage(m)));
    s.on('connected', (c) => status(`${name}: following from ${c.endpoint}`));
    s.on('failover', (f) => status(`${name}: stream failover ${f.from} -> ${f.to} (${f.reason})`));
    s.on('closed', (err) => {
      if (err !== undefined) fail(err);
      if (stream === s) stream = undefined;
    });
    print(`-- joined ${name}`);
    noteEndpoint();
  };

  const handle = async (line: string): Promise<boolean> => {
    const text = line.trim();
    if (text === '') return true;
    if (!text.startsWith('/')) {
      if (client.token === undefined) throw new Error('not logged in: /login or /register first');
      if (room === undefined) throw new Error('no room: /join <room> first');
      client.postWithOutbox(room, line);
      return true;
    }
    const [cmd, ...args] = text.split(/\s+/);
    switch (cmd) {
      case '/quit':
      case '/exit':
        return false;
      case '/help':
        for (const l of HELP) print(l);
        return true;
      case '/register':
      case '/login':
        await login(args[0], args[1], cmd === '/register');
        return true;
      case '/logout':
        await client.logout();
        print('-- logged out');
        return true;
      case '/join':
        if (args[0] === undefined) throw new Error('usage: /join <room>');
        if (client.token === undefined) throw new Error('not logged in: /login or /register first');
        await join(args[0]);
        return true;
      case '/rooms': {
        const rooms = await client.rooms();
        const rows = [
          ['room', 'members', 'last_seq'],
          ...rooms.map((r) => [r.name, String(r.members), String(r.lastSeq)]),
        ];
        const w = [0, 1].map((i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
        for (const r of rows)
          print(`${(r[0] ?? '').padEnd(w[0] ?? 0)}  ${(r[1] ?? '').padStart(w[1] ?? 0)}  ${r[2] ?? ''}`);
        noteEndpoint();
        return true;
      }
      default:
        throw new Error(`unknown command ${cmd ?? ''} (/help)`);
    }
  };

  try {
    if (flags.user !== undefined) {
      await login(flags.user, flags.password, flags.register === true).catch(fail);
    } else if (tty) {
      // On a terminal, ask; a piped session logs in with /login or /register (or --user).
      const first = await ask('username (or a /command): ');
      if (first !== undefined && first.startsWith('/')) lines.unshift(first);
      else if (first !== undefined && first !== '')
        await login(first, flags.password, flags.register === true).catch(fail);
    }
    if (flags.room !== undefined && client.token !== undefined) await join(flags.room).catch(fail);
    if (tty) {
      rl.setPrompt('> ');
      rl.prompt();
    }
    for (;;) {
      const line = await nextLine();
      if (line === undefined) break;
      const go = await handle(line).catch((err: unknown) => (fail(err), true));
      if (!go) break;
      if (tty) rl.prompt();
    }
    quitting = true;
    const drained = client.drain();
    const late = await Promise.race([drained.then(() => false), sleep(200).then(() => true)]);
    if (late) {
      print(`-- waiting for ${client.outbox.length} queued message(s) to be delivered (Ctrl-C to give up)`);
      await Promise.race([drained, gaveUp]);
    }
    // Show our own last messages before leaving (the stream may be a little behind the acknowledgements).
    const s = stream;
    const target = room === undefined ? 0 : (postedUpTo.get(room) ?? 0);
    const until = Date.now() + 3000;
    while (s !== undefined && !s.closed && s.lastSeq < target && Date.now() < until) await sleep(20);
  } finally {
    io.signal?.removeEventListener('abort', abort);
    client.close();
    rl.close();
  }
  return hadError && !tty ? 1 : 0;
}
