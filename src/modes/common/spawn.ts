import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { freeNodePorts } from '../../net/ports.js';

/**
 * Runs a quorum or eventual node as a child process (`node dist/src/modes/<mode>/main.js ...`) and waits
 * until it prints its `{"listening": url}` line. Used by the tests and by `quorumkv cluster`.
 */
export interface SpawnedNode {
  readonly url: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Sends SIGTERM (SIGKILL with `hard`) to this child by PID and waits for it to exit. */
  stop(hard?: boolean): Promise<void>;
  /** Starts the same node again (same program, arguments and environment), e.g. after it died. */
  respawn(): Promise<SpawnedNode>;
}

export type SpawnableMode = 'quorum' | 'eventual' | 'causal';

export function mainScript(mode: SpawnableMode): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return path.join(here, '..', mode, 'main.js');
}

export function spawnModeNode(
  mode: SpawnableMode,
  args: readonly string[],
  env: Record<string, string> = {},
  startTimeoutMs = 30_000,
): Promise<SpawnedNode> {
  const child = spawn(process.execPath, [mainScript(mode), ...args], {
    // The child watches its stdin and stops when it closes, so it never outlives this process.
    env: { ...process.env, ...env, QUORUMKV_EXIT_WITH_PARENT: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  return new Promise<SpawnedNode>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      reject(new Error(`${mode} node did not start in ${startTimeoutMs} ms: ${stderr}`));
    }, startTimeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${mode} node exited with ${code} before listening: ${stderr}`));
    });
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let parsed: unknown;
        try {
          parsed = JSON.parse(line);
        } catch {
          continue;
        }
        const url = (parsed as { listening?: unknown }).listening;
        if (typeof url === 'string' && child.pid !== undefined) {
          clearTimeout(timer);
          const pid = child.pid;
          resolve({
            url,
            pid,
            child,
            async stop(hard = false) {
              if (child.exitCode === null && child.signalCode === null) {
                try {
                  process.kill(pid, hard ? 'SIGKILL' : 'SIGTERM');
                } catch {
                  // already gone
                }
              }
              await exited;
            },
            respawn: () => spawnModeNode(mode, args, env, startTimeoutMs),
          });
        }
      }
    });
  });
}

/** Ports that were free a moment ago, for clusters whose nodes must know each other's addresses in advance. */
export { freeNodePorts as freePorts };
