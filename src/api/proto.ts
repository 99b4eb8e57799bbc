import { loadPackageDefinition, type GrpcObject, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync, type Options, type PackageDefinition } from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';
import type { ScoreResponseMsg } from './messages.js';
import { decodePromptRequest, PROMPT_FIELDS } from './wire/prompt-request.js';
import { decodeScoreRequest } from './wire/score-request.js';
import { encodeScoreResponse } from './wire/score-response.js';
import { decodeGeneric } from './wire/undecodable.js';

/** proto/ at the repository root, from src/api (tsx) and from dist/api (compiled) alike. */
export const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));

export const PROTO_FILES = ['kvindexer/v1/kvindexer.proto', 'indexer/v1/indexer.proto', 'grpc/health/v1/health.proto'];

/** uint64 as decimal strings (never through float64), camelCase fields, defaults filled, oneof member named. */
export const LOADER_OPTIONS: Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

export interface LoadedProtos {
  definition: PackageDefinition;
  /** With the hand-written Score codec; every method's malformed request comes as an UndecodableRequest. */
  kvIndexer: ServiceDefinition;
  llmdIndexer: ServiceDefinition;
  health: ServiceDefinition;
}

export function loadProtos(): LoadedProtos {
  const definition = loadSync(PROTO_FILES, LOADER_OPTIONS);
  const root = loadPackageDefinition(definition);
  const service = (path: string) => {
    let node: unknown = root;
    for (const part of path.split('.')) node = (node as GrpcObject)[part];
    return (node as { service: ServiceDefinition }).service;
  };
  return {
    definition,
    kvIndexer: withFastCodecs(service('kvindexer.v1.KvIndexer')),
    llmdIndexer: withFastCodecs(service('indexer.v1.IndexerService')),
    health: service('grpc.health.v1.Health'),
  };
}

/**
 * Score gets the hand-written codec of wire/ (score-request.ts, score-response.ts); the other methods keep proto-loader's, with decoding errors
 * returned (as UndecodableRequest → INVALID_ARGUMENT) rather than thrown (grpc-js would answer INTERNAL).
 */
function withFastCodecs(service: ServiceDefinition): ServiceDefinition {
  const out: Record<string, ServiceDefinition[string]> = {};
  for (const [name, method] of Object.entries(service)) {
    const generic = method.requestDeserialize;
    const messageName = method.path.slice(method.path.lastIndexOf('/') + 1);
    out[name] =
      method.path === '/kvindexer.v1.KvIndexer/Score'
        ? {
            ...method,
            requestDeserialize: (buf: Buffer) => decodeScoreRequest(buf, generic),
            responseSerialize: (msg: ScoreResponseMsg) => encodeScoreResponse(msg),
          }
        : PROMPT_FIELDS[method.path]
          ? {
              ...method,
              requestDeserialize: (buf: Buffer) =>
                decodePromptRequest(buf, generic, `${messageName} request`, PROMPT_FIELDS[method.path]),
            }
          : { ...method, requestDeserialize: (buf: Buffer) => decodeGeneric(buf, generic, `${messageName} request`) };
  }
  return out;
}
