/**
 * What a decoder hands grpc-js for bytes that are not a valid message: an UndecodableRequest, which the server answers
 * with INVALID_ARGUMENT and its message (thrown at grpc-js, an error would be answered INTERNAL).
 */

/** A request whose bytes are not a valid message; the server answers INVALID_ARGUMENT with `message`. */
export class UndecodableRequest {
  constructor(readonly message: string) {}
}

/** The generic decoder, with its errors returned as UndecodableRequest instead of thrown. */
export function decodeGeneric<T>(buf: Buffer, generic: (buf: Buffer) => T, name: string): T | UndecodableRequest {
  try {
    return generic(buf);
  } catch (err) {
    return new UndecodableRequest(`malformed ${name}: ${(err as Error).message}`);
  }
}
