import { IndexerError, type ErrorCode } from '../common/index.js';

/** gRPC-style status names, so the API layer can map them 1:1. */
export type PromptErrorCode = Exclude<ErrorCode, 'unavailable'>;

/**
 * The one error the prompt folder throws for anything a caller or a model directory got wrong. `field` is a path into
 * the request (e.g. `messages[2].content[1].image_url`) or into the model configuration, when one applies.
 */
export class PromptError extends IndexerError {
  constructor(code: PromptErrorCode, message: string, field?: string) {
    super(code, field ?? '', field ? `${field}: ${message}` : message);
  }
}

export const invalid = (field: string | undefined, message: string): PromptError =>
  new PromptError('invalid_argument', message, field);
