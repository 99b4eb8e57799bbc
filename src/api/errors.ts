import { IndexerError, type ErrorCode } from '../common/index.js';

/** API errors carry a status the transport maps to its own codes (gRPC status, HTTP code) and the offending field. */
export type ApiErrorCode = ErrorCode;

export class ApiError extends IndexerError {
  constructor(
    code: ApiErrorCode,
    /** Field path in the request, e.g. `candidates[3]` or `chat.messages_json`; empty when it is the whole call. */
    field: string,
    message: string,
  ) {
    super(code, field, field ? `${field}: ${message}` : message);
  }
}

export const invalid = (field: string, message: string) => new ApiError('invalid_argument', field, message);
export const exhausted = (field: string, message: string) => new ApiError('resource_exhausted', field, message);
