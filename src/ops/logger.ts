import { pino, type Logger } from 'pino';

export type { Logger };

/** Structured JSON logs on stdout. */
export function createLogger(level: string, name = 'kv-indexer'): Logger {
  return pino({ name, level });
}
