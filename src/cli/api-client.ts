import { credentials, loadPackageDefinition, type GrpcObject, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { LOADER_OPTIONS } from '../api/index.js';

/** Where the client subcommands (score, health, info, endpoints, lookup) find the indexer when --address is absent. */
export const DEFAULT_CLIENT_ADDRESS = 'localhost:50051';

/**
 * The address to call: --address, else KV_INDEXER_GRPC_ADDRESS (the server's own setting, so one environment serves
 * both; a wildcard host such as 0.0.0.0 or [::] becomes the loopback), else localhost:50051.
 */
export function clientAddress(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  if (flag) return flag;
  const configured = env.KV_INDEXER_GRPC_ADDRESS?.trim();
  if (!configured) return DEFAULT_CLIENT_ADDRESS;
  return configured.replace(/^(0\.0\.0\.0|\[::\]|::|\*)(?=:\d+$)/, (host) =>
    host.includes(':') ? '[::1]' : '127.0.0.1',
  );
}

type Callback = (err: ServiceError | null, res: unknown) => void;
type UnaryMethod = (req: object, options: { deadline: number }, cb: Callback) => void;

/** A plaintext gRPC client of one service of the shipped protos, with promise-returning unary calls. */
export class ApiClient {
  private readonly client: Record<string, UnaryMethod> & { close(): void };

  constructor(
    address: string,
    protoFile = 'kvindexer/v1/kvindexer.proto',
    service = 'kvindexer.v1.KvIndexer',
    private readonly deadlineMs = 10_000,
  ) {
    let node: unknown = loadPackageDefinition(loadSync(protoFile, LOADER_OPTIONS));
    for (const part of service.split('.')) node = (node as GrpcObject)[part];
    const Client = node as new (
      address: string,
      creds: ReturnType<typeof credentials.createInsecure>,
    ) => Record<string, UnaryMethod> & { close(): void };
    this.client = new Client(address, credentials.createInsecure());
  }

  call<T>(method: string, request: object = {}): Promise<T> {
    return new Promise<T>((resolve, reject) =>
      this.client[method].call(this.client, request, { deadline: Date.now() + this.deadlineMs }, (err, res) =>
        err ? reject(err) : resolve(res as T),
      ),
    );
  }

  close(): void {
    this.client.close();
  }
}

/** A failed call as one line: the gRPC status name and its details. */
export function describeCallError(err: unknown): string {
  const e = err as ServiceError;
  const names: Record<number, string> = {
    4: 'DEADLINE_EXCEEDED',
    14: 'UNAVAILABLE',
    12: 'UNIMPLEMENTED',
    16: 'UNAUTHENTICATED',
    3: 'INVALID_ARGUMENT',
    5: 'NOT_FOUND',
  };
  const status = typeof e?.code === 'number' ? (names[e.code] ?? `status ${e.code}`) : 'error';
  return `${status}: ${e?.details || e?.message || String(err)}`;
}
