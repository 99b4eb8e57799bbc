import { hostname } from 'node:os';
import { writeSync } from 'node:fs';
import { ConfigError } from '../ops/index.js';
import { IndexerError } from '../common/index.js';

/**
 * A start-up failure attributed to the setting that caused it: `metrics.port 9090: address in use`. The process
 * logs it as one structured line and exits non-zero (see failStartup), whatever handles are still open.
 */
export class StartupError extends IndexerError {
  constructor(
    readonly setting: string,
    readonly value: string,
    readonly reason: string,
  ) {
    super('failed_precondition', setting, `${setting} ${value}: ${reason}`);
  }
}

/** How a failed start crosses to another thread or process: enough to rebuild the StartupError or ConfigError. */
export type StartFailure =
  | { kind: 'startup'; setting: string; value: string; reason: string }
  | { kind: 'config'; message: string }
  | { kind: 'other'; message: string };

/** A failed start as a StartFailure (index thread, serving process). */
export function describeStartFailure(err: unknown): StartFailure {
  if (err instanceof StartupError)
    return { kind: 'startup', setting: err.setting, value: err.value, reason: err.reason };
  if (err instanceof ConfigError) return { kind: 'config', message: err.message };
  return { kind: 'other', message: err instanceof Error ? err.message : String(err) };
}

/** The error a StartFailure was made from (the host reports it as if the start had failed here). */
export function rebuildStartFailure(failure: StartFailure): Error {
  if (failure.kind === 'startup') return new StartupError(failure.setting, failure.value, failure.reason);
  if (failure.kind === 'config') return new ConfigError(failure.message);
  return new Error(failure.message);
}

/** The operator's words for the usual socket errors (Node, zeromq and grpc-js spell them differently). */
export function explainError(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown; details?: unknown };
  const text = `${String(e?.code ?? '')} ${String(e?.message ?? err)} ${String(e?.details ?? '')}`;
  if (/EADDRINUSE|address already in use/i.test(text)) return 'address in use';
  if (/EACCES|permission denied/i.test(text)) return 'permission denied';
  if (/EADDRNOTAVAIL|cannot assign requested address/i.test(text)) return 'address not available on this host';
  if (/ECONNREFUSED|connection refused/i.test(text)) return 'connection refused';
  if (/ENOTFOUND|EAI_AGAIN|getaddrinfo/i.test(text)) return 'host name not resolved';
  if (/ETIMEDOUT|timed? ?out/i.test(text)) return 'timed out';
  const message = String(e?.message ?? err);
  return message.split('\n')[0];
}

/** Runs one start-up step; its failure becomes a StartupError naming `setting` (ConfigErrors and StartupErrors pass). */
export async function atSetting<T>(
  setting: string,
  value: string | ((err: unknown) => string),
  step: () => Promise<T>,
): Promise<T> {
  try {
    return await step();
  } catch (err) {
    if (err instanceof StartupError || err instanceof ConfigError) throw err;
    throw new StartupError(setting, typeof value === 'string' ? value : value(err), explainError(err));
  }
}

/** The fields of the one log line a failed start writes: the setting (when known), the reason and the message. */
export function startupFailureRecord(err: unknown): { setting: string | null; error: string; msg: string } {
  if (err instanceof StartupError)
    return { setting: err.setting, error: err.reason, msg: `start-up failed: ${err.message}` };
  const message = err instanceof Error ? err.message : String(err);
  // ConfigError lists its problems as `  section.key: reason` lines after a heading: one line, the first setting named.
  const lines = message
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const problems = lines.filter((l) => /^[\w.]+: /.test(l) || /^--set /.test(l));
  const first = problems[0] ?? lines[0] ?? '';
  // Keys may be nested deeper than section.key (images.fetch.maxBytes): the whole dotted path is the setting.
  const named = /^(\w+(?:\.\w+)+)[: ]/.exec(first) ?? /\b(\w+(?:\.\w+)+):/.exec(message);
  const text = lines.length > 1 ? lines.slice(lines[0].endsWith(':') ? 1 : 0).join('; ') : first;
  return { setting: named ? named[1] : null, error: text, msg: `start-up failed: ${text}` };
}

/**
 * Writes the failure as one pino-shaped JSON line on stdout (synchronously, so it is out before exit) and exits with
 * `code`: worker threads, timers and sockets left by the failed start cannot keep the process alive.
 */
export function failStartup(err: unknown, code = 1): never {
  const record = startupFailureRecord(err);
  const line = { level: 60, time: Date.now(), pid: process.pid, hostname: hostname(), name: 'kv-indexer', ...record };
  writeSync(1, `${JSON.stringify(line)}\n`);
  process.exit(code);
}
