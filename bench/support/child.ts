import { fork, type ChildProcess } from 'node:child_process';

/** Forks a benchmark's helper process (a load generator, the hostile HTTP/2 clients) and waits until it runs. */
export async function forkChild(script: URL): Promise<ChildProcess> {
  const child = fork(script, [], { execArgv: [], stdio: 'inherit' });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  return child;
}

/**
 * Sends `message` to a helper process and resolves with its next reply if that reply's type is `expected`; rejects
 * with the helper's own message otherwise, or if the helper exits first. `name` goes in the errors.
 */
export function requestChild<T = unknown>(
  child: ChildProcess,
  name: string,
  message: object,
  expected: string,
): Promise<T & { type: string }> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: T & { type: string; message?: string }) => {
      child.off('exit', onExit);
      if (m.type === expected) resolve(m);
      else reject(new Error(`${name}: ${m.message ?? m.type}`));
    };
    const onExit = (code: number | null) => {
      child.off('message', onMessage);
      reject(new Error(`${name} exited (${code})`));
    };
    child.once('message', onMessage);
    child.once('exit', onExit);
    child.send(message);
  });
}
