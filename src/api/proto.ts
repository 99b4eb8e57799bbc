import { loadPackageDefinition, type GrpcObject, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync, type Options, type PackageDefinition } from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';

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
    kvIndexer: service('kvindexer.v1.KvIndexer'),
    llmdIndexer: service('indexer.v1.IndexerService'),
    health: service('grpc.health.v1.Health'),
  };
}
