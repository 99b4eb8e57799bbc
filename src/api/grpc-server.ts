import {
  Server,
  ServerCredentials,
  status,
  type sendUnaryData,
  type ServerErrorResponse,
  type ServerUnaryCall,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { ApiError, type ApiErrorCode } from './errors.js';
import type { HealthService } from './health.js';
import type { IndexerApi } from './indexer-api.js';
import { loadProtos } from './proto.js';

export interface GrpcServerOptions {
  /** host:port; port 0 picks a free one (see `port` after start). */
  address: string;
  maxMessageBytes: number;
}

export interface GrpcLog {
  error(fields: object, message: string): void;
}

const STATUS_OF: Record<ApiErrorCode, status> = {
  invalid_argument: status.INVALID_ARGUMENT,
  not_found: status.NOT_FOUND,
  resource_exhausted: status.RESOURCE_EXHAUSTED,
  unavailable: status.UNAVAILABLE,
  deadline_exceeded: status.DEADLINE_EXCEEDED,
  failed_precondition: status.FAILED_PRECONDITION,
  internal: status.INTERNAL,
};

/** The gRPC server: kvindexer.v1, llm-d's indexer.v1, grpc.health.v1 and server reflection. */
export class GrpcServer {
  private readonly server: Server;
  private boundPort = 0;

  constructor(
    private readonly api: IndexerApi,
    private readonly health: HealthService,
    private readonly options: GrpcServerOptions,
    private readonly log: GrpcLog,
  ) {
    this.server = new Server({
      'grpc.max_receive_message_length': options.maxMessageBytes,
      'grpc.max_send_message_length': options.maxMessageBytes,
    });
    const protos = loadProtos();
    this.server.addService(protos.kvIndexer, this.kvIndexerHandlers());
    this.server.addService(protos.llmdIndexer, {
      getPodScores: this.unary((req: Parameters<IndexerApi['getPodScores']>[0], signal) => this.api.getPodScores(req, signal)),
    });
    this.server.addService(protos.health, health.implementation());
    new ReflectionService(protos.definition).addToServer(this.server);
  }

  get port(): number {
    return this.boundPort;
  }

  async start(): Promise<number> {
    this.boundPort = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(this.options.address, ServerCredentials.createInsecure(), (err, port) =>
        err ? reject(err) : resolve(port),
      ),
    );
    return this.boundPort;
  }

  /** Stops accepting calls, lets in-flight calls finish for up to `graceMs`, then cancels the rest. */
  async stop(graceMs = 5_000): Promise<void> {
    this.health.endWatches();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private kvIndexerHandlers(): UntypedServiceImplementation {
    const api = this.api;
    return {
      score: this.unary((req: Parameters<IndexerApi['score']>[0], signal) => api.score(req, signal)),
      computeBlockKeys: this.unary((req: Parameters<IndexerApi['computeBlockKeys']>[0], signal) => api.computeBlockKeys(req, signal)),
      render: this.unary((req: Parameters<IndexerApi['render']>[0], signal) => api.render(req, signal)),
      lookup: this.unary((req: Parameters<IndexerApi['lookup']>[0]) => api.lookup(req)),
      reserve: this.unary((req: Parameters<IndexerApi['reserve']>[0]) => api.reserve(req)),
      release: this.unary((req: Parameters<IndexerApi['release']>[0]) => api.release(req)),
      listEndpoints: this.unary(() => api.listEndpoints()),
      addEndpoint: this.unary((req: Parameters<IndexerApi['addEndpoint']>[0]) => api.addEndpoint(req)),
      removeEndpoint: this.unary((req: Parameters<IndexerApi['removeEndpoint']>[0]) => api.removeEndpoint(req)),
      clearEndpoint: this.unary((req: Parameters<IndexerApi['clearEndpoint']>[0]) => api.clearEndpoint(req)),
      getInfo: this.unary(() => api.getInfo()),
      getStats: this.unary(() => api.getStats()),
    };
  }

  /** Adapts an async operation: cancellation/deadline → AbortSignal, ApiError → status with the field in details. */
  private unary<Req, Res>(fn: (req: Req, signal: AbortSignal) => Promise<Res>) {
    return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
      const abort = new AbortController();
      call.on('cancelled', () => abort.abort());
      let result: Promise<Res>;
      try {
        result = fn(call.request, abort.signal);
      } catch (err) {
        result = Promise.reject(err);
      }
      result.then(
        (response) => callback(null, response),
        (err: unknown) => callback(this.toStatus(err, call.getPath())),
      );
    };
  }

  private toStatus(err: unknown, path: string): Partial<ServerErrorResponse> {
    if (err instanceof ApiError) return { code: STATUS_OF[err.code], details: err.message };
    this.log.error({ err, path }, 'unexpected error in gRPC handler');
    return { code: status.INTERNAL, details: 'internal error (logged by the server)' };
  }
}
