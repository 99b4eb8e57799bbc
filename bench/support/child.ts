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
