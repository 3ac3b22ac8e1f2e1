import type { ChildProcessWithoutNullStreams } from 'node:child_process';

/**
 * Resolves once a node child process prints its `"event":"listening"` log line; rejects if it exits first,
 * with the tail of its stderr. Used by every harness that spawns raft node processes.
 */
export function untilListening(
  child: ChildProcessWithoutNullStreams,
  label: string,
  stderr: () => string,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8');
    const onData = (d: string) => {
      out += d;
      if (out.includes('"event":"listening"')) {
        child.stdout.off('data', onData);
        child.stdout.resume();
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.once('exit', (code, sig) =>
      reject(new Error(`${label} exited (${code ?? sig}) before listening: ${stderr()}`)),
    );
  });
}
