import { credentials, loadPackageDefinition, Metadata, type Client, type GrpcObject, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { LOADER_OPTIONS, PROTO_DIR } from '../../src/api/index.js';

type Unary = (req: object, metadata: Metadata, options: { deadline?: number }, cb: (err: ServiceError | null, res: any) => void) => void;

/** A real gRPC client for a service of the project's protos, with promise-returning calls. */
export function grpcClient(address: string, file: string, service: string) {
  const def = loadSync(file, { ...LOADER_OPTIONS, includeDirs: [PROTO_DIR] });
  let node: unknown = loadPackageDefinition(def);
  for (const part of service.split('.')) node = (node as GrpcObject)[part];
  const Ctor = node as new (addr: string, creds: ReturnType<typeof credentials.createInsecure>) => Client;
  const client = new Ctor(address, credentials.createInsecure()) as Client & Record<string, Unary>;
  const call = <T = any>(method: string, req: object, deadlineMs = 5_000): Promise<T> =>
    new Promise((resolve, reject) =>
      client[method](req, new Metadata(), { deadline: Date.now() + deadlineMs }, (err, res) => (err ? reject(err) : resolve(res))),
    );
  return { client, call, close: () => client.close() };
}
