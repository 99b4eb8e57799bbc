/** gRPC-style status names, so the API layer can map them 1:1. */
export type PromptErrorCode = 'invalid_argument' | 'not_found' | 'resource_exhausted' | 'failed_precondition' | 'deadline_exceeded' | 'internal';

/**
 * The one error the prompt folder throws for anything a caller or a model directory got wrong. `field` is a path into
 * the request (e.g. `messages[2].content[1].image_url`) or into the model configuration, when one applies.
 */
export class PromptError extends Error {
  override readonly name = 'PromptError';
  constructor(
    readonly code: PromptErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(field ? `${field}: ${message}` : message);
  }
}

export const invalid = (field: string | undefined, message: string): PromptError =>
  new PromptError('invalid_argument', message, field);
