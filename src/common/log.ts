/**
 * The one logger shape of the code base: structured fields first, then the message (pino's argument order; the
 * service's pino Logger from ops/logger.ts satisfies it). Modules take the subset they use, `Pick<Log, 'warn'>` say,
 * so a test or a one-shot command can pass a small object.
 */
export interface Log {
  error(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
  debug(fields: object, message: string): void;
}
