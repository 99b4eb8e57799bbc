import {
  credentials,
  loadPackageDefinition,
  Metadata,
  type ChannelCredentials,
  type ChannelOptions,
  type Client,
  type GrpcObject,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { LOADER_OPTIONS, PROTO_DIR } from '../../src/api/index.js';

type Unary = (
  req: object,
  metadata: Metadata,
  options: { deadline?: number },
  cb: (err: ServiceError | null, res: any) => void,
) => void;

/** A real gRPC client for a service of the project's protos, with promise-returning calls. */
export function grpcClient(
  address: string,
  file: string,
  service: string,
  creds: ChannelCredentials = credentials.createInsecure(),
  headers: Record<string, string> = {},
  /** Channel options; distinct options give a connection of its own (grpc-js shares subchannels otherwise). */
  options: ChannelOptions = {},
) {
  const def = loadSync(file, { ...LOADER_OPTIONS, includeDirs: [PROTO_DIR] });
  let node: unknown = loadPackageDefinition(def);
  for (const part of service.split('.')) node = (node as GrpcObject)[part];
  const Ctor = node as new (addr: string, creds: ChannelCredentials, options: ChannelOptions) => Client;
  const client = new Ctor(address, creds, options) as Client & Record<string, Unary>;
  const call = <T = any>(method: string, req: object, deadlineMs = 5_000): Promise<T> => {
    const metadata = new Metadata();
    for (const [k, v] of Object.entries(headers)) metadata.set(k, v);
    return new Promise((resolve, reject) =>
      client[method](req, metadata, { deadline: Date.now() + deadlineMs }, (err, res) =>
        err ? reject(err) : resolve(res),
      ),
    );
  };
  return { client, call, close: () => client.close() };
}
