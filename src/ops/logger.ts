import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs on stdout, written synchronously: the service logs little (stats every 30 s, rate-limited
 * warnings), and a line logged just before the process exits (a failed start, a crash) must not be lost or overtaken
 * by a later one.
 */
export function createLogger(level: string, name = 'kv-indexer'): Logger {
  return pino({ name, level }, pino.destination({ dest: 1, sync: true }));
}
