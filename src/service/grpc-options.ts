import { readFileSync } from 'node:fs';
import type { GrpcServerOptions } from '../api/index.js';
import { ConfigError, type Config } from '../ops/index.js';

/** TLS material and the admin token, read from their files now so that a bad path fails the start, not a call. */
export function grpcOptions(config: Config): GrpcServerOptions {
  const { api } = config;
  const read = (key: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new ConfigError(`api.${key}: cannot read ${path}: ${(err as Error).message}`);
    }
  };
  if (!!api.tlsCertFile !== !!api.tlsKeyFile) throw new ConfigError('api.tlsCertFile and api.tlsKeyFile go together');
  if (api.tlsClientCaFile && !api.tlsCertFile)
    throw new ConfigError('api.tlsClientCaFile needs api.tlsCertFile and api.tlsKeyFile');
  const options: GrpcServerOptions = {
    address: api.grpcAddress,
    maxMessageBytes: api.maxMessageBytes,
    fastScore: api.fastScore,
    lean: api.leanHttp2,
    limits: {
      maxConnectionIdleMs: api.maxConnectionIdleMs,
      maxConnectionAgeMs: api.maxConnectionAgeMs,
      maxConnectionAgeGraceMs: api.maxConnectionAgeGraceMs,
      keepaliveTimeMs: api.keepaliveTimeMs,
      keepaliveTimeoutMs: api.keepaliveTimeoutMs,
      maxConcurrentStreams: api.maxConcurrentStreams,
      maxConnections: api.maxConnections,
      handshakeTimeoutMs: api.handshakeTimeoutMs,
      maxOpenCalls: api.maxOpenCalls,
    },
  };
  if (api.tlsCertFile) {
    options.tls = {
      cert: read('tlsCertFile', api.tlsCertFile),
      key: read('tlsKeyFile', api.tlsKeyFile),
      clientCa: api.tlsClientCaFile ? read('tlsClientCaFile', api.tlsClientCaFile) : undefined,
    };
  }
  if (api.adminTokenFile) {
    const token = read('adminTokenFile', api.adminTokenFile).toString('utf8').trim();
    if (token.length < 16)
      throw new ConfigError(`api.adminTokenFile: the token in ${api.adminTokenFile} is shorter than 16 characters`);
    options.adminToken = token;
  }
  return options;
}
