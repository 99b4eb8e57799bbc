/**
 * The one error shape of every module: a status-like `code`, the `field` it concerns (a path into a request, the
 * configuration or a payload, e.g. `candidates[3]`, `index.redisUrl`, `events[2].block_hashes[0]`; '' = the whole
 * thing) and a message for people. The API maps `code` to a gRPC status in one place (src/api/grpc-server.ts); the
 * command line prints the message; metrics count a subclass's own `reason` where it has one.
 */
export const ERROR_CODES = [
  'invalid_argument',
  'not_found',
  'resource_exhausted',
  'unavailable',
  'deadline_exceeded',
  'failed_precondition',
  'internal',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export class IndexerError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly field: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Input this service cannot use (a message, a file, a payload, a setting): invalid_argument, the whole input. */
export class InvalidInputError extends IndexerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid_argument', '', message, options);
  }
}
