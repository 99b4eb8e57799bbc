import { status } from '@grpc/grpc-js';
import type { Log } from '../common/index.js';
import { toStatus } from './grpc-status.js';
import type { Operations } from './operations.js';
import type { Cancellation } from './prompt-frontend.js';
import { loadProtos } from './proto.js';
import { UndecodableRequest } from './wire/undecodable.js';

/** A call's outcome as bytes: the encoded response, or the status it failed with. */
export type WireReply = { bytes: Buffer } | { code: number; details: string };

/**
 * The operations behind a byte boundary (the index thread's side of service/index-thread-host.ts): each request is
 * decoded with the codec grpc-server.ts would have used (Score's hand codec; malformed → INVALID_ARGUMENT), run, and
 * its response encoded here, so that only bytes and a status cross between threads.
 */
export class WireOperations {
  private readonly methods = new Map<
    string,
    { decode: (b: Buffer) => unknown; encode: (m: unknown) => Buffer; run: Operations[string] }
  >();

  constructor(
    operations: Operations,
    private readonly log: Pick<Log, 'error'>,
  ) {
    const protos = loadProtos();
    for (const service of [protos.kvIndexer, protos.llmdIndexer]) {
      for (const method of Object.values(service)) {
        const run = operations[method.path];
        if (!run) throw new Error(`no operation serves ${method.path}`);
        this.methods.set(method.path, {
          decode: method.requestDeserialize,
          encode: method.responseSerialize as (m: unknown) => Buffer,
          run,
        });
      }
    }
  }

  /** Runs the call of `path` on `request` (protobuf bytes, no gRPC prefix); never rejects. */
  async call(path: string, request: Buffer, cancellation: Cancellation, caller: string): Promise<WireReply> {
    const method = this.methods.get(path);
    if (!method) return { code: status.UNIMPLEMENTED, details: `unknown method ${path}` };
    try {
      const decoded = method.decode(request);
      if (decoded instanceof UndecodableRequest) return { code: status.INVALID_ARGUMENT, details: decoded.message };
      const response = await (method.run as (r: unknown, c: Cancellation, caller: string) => Promise<unknown>)(
        decoded,
        cancellation,
        caller,
      );
      return { bytes: method.encode(response) };
    } catch (err) {
      return toStatus(err, path, this.log);
    }
  }
}
