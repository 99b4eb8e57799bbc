/** API errors carry a status the transport maps to its own codes (gRPC status, HTTP code) and the offending field. */
export type ApiErrorCode =
  | 'invalid_argument'
  | 'not_found'
  | 'resource_exhausted'
  | 'unavailable'
  | 'deadline_exceeded'
  | 'failed_precondition'
  | 'internal';

export class ApiError extends Error {
  constructor(
    readonly code: ApiErrorCode,
    /** Field path in the request, e.g. `candidates[3]` or `chat.messages_json`; empty when it is the whole call. */
    readonly field: string,
    message: string,
  ) {
    super(field ? `${field}: ${message}` : message);
    this.name = 'ApiError';
  }
}

export const invalid = (field: string, message: string) => new ApiError('invalid_argument', field, message);
export const exhausted = (field: string, message: string) => new ApiError('resource_exhausted', field, message);
