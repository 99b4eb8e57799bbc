import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export const REPO = new URL('../../', import.meta.url).pathname;

/** A spawned `kv-indexer` (TypeScript through tsx, as `npx kv-indexer` runs it from a clone). */
export interface CliRun {
  child: ChildProcess;
  /** stdout lines, parsed as JSON where they are JSON ({msg: line} otherwise). */
  logs: Record<string, unknown>[];
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code (null on a signal) once the process exited. */
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
}

export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}): CliRun {
  const started = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: REPO,
    env: { ...process.env, KV_INDEXER_STATS_INTERVAL_SECONDS: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => (err += d));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    out += `${line}\n`;
    try {
      logs.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      logs.push({ msg: line });
    }
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>((resolve) =>
    // 'close': stdout and stderr are read to the end as well.
    child.once('close', (code, signal) => resolve({ code, signal, ms: Date.now() - started })),
  );
  return { child, logs, stdout: () => out, stderr: () => err, exit };
}

/** Runs the CLI to its end (killed after `timeoutMs`: the test then sees signal SIGKILL). */
export async function runCli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 20_000) {
  const run = spawnCli(args, env);
  const timer = setTimeout(() => run.child.kill('SIGKILL'), timeoutMs);
  const result = await run.exit;
  clearTimeout(timer);
  return { ...result, logs: run.logs, stdout: run.stdout(), stderr: run.stderr() };
}
