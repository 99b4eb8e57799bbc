// What the raw HTTP/2 Score clients of the benchmarks (suites/grpc-load-client.mjs) and the soak (soak-score-client.mjs)
// share: the kvindexer.v1 Score method (for its path and request serialiser), the request headers, gRPC framing.
import { constants } from 'node:http2';
import { fileURLToPath } from 'node:url';
import { loadSync } from '@grpc/proto-loader';

const PROTO_DIR = fileURLToPath(new URL('../proto/', import.meta.url));
const def = loadSync('kvindexer/v1/kvindexer.proto', {
  keepCase: false,
  longs: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
});

/** kvindexer.v1.KvIndexer/Score as proto-loader defines it (path, requestSerialize, responseDeserialize). */
export const score = def['kvindexer.v1.KvIndexer'].Score;

/** Request headers of a unary gRPC Score call. */
export const SCORE_HEADERS = {
  [constants.HTTP2_HEADER_METHOD]: 'POST',
  [constants.HTTP2_HEADER_PATH]: score.path,
  [constants.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc',
  te: 'trailers',
};

/** gRPC length-prefixed message: 1 byte "not compressed", 4 bytes big-endian length, the message. */
export function grpcFrame(message) {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  message.copy(out, 5);
  return out;
}
