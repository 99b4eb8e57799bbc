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
import { createHash, timingSafeEqual } from 'node:crypto';
import { ApiError, type ApiErrorCode } from './errors.js';
import type { HealthService } from './health.js';
import type { IndexerApi } from './indexer-api.js';
import type { Cancellation } from './prompt-frontend.js';
import { loadProtos } from './proto.js';

export interface GrpcServerOptions {
  /** host:port; port 0 picks a free one (see `port` after start). */
  address: string;
  maxMessageBytes: number;
  /** PEM material; absent = plaintext. With `clientCa`, clients must present a certificate it signed. */
  tls?: { cert: Buffer; key: Buffer; clientCa?: Buffer };
  /** Bearer token the admin RPCs (AddEndpoint, RemoveEndpoint, ClearEndpoint) require; absent = no check. */
  adminToken?: string;
}

const ADMIN_METHODS = new Set(['addEndpoint', 'removeEndpoint', 'clearEndpoint']);

export interface GrpcLog {
  error(fields: object, message: string): void;
}

type AnyUnary = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => void;

/** Fixed-length digests, so that comparing tokens of different lengths leaks nothing through timing. */
function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
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
      this.server.bindAsync(this.options.address, this.credentials(), (err, port) =>
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

  private credentials(): ServerCredentials {
    const tls = this.options.tls;
    if (!tls) return ServerCredentials.createInsecure();
    return ServerCredentials.createSsl(tls.clientCa ?? null, [{ cert_chain: tls.cert, private_key: tls.key }], !!tls.clientCa);
  }

  private kvIndexerHandlers(): UntypedServiceImplementation {
    const handlers = this.kvIndexerOperations();
    const token = this.options.adminToken;
    if (token) {
      for (const name of ADMIN_METHODS) handlers[name] = this.requireAdmin(handlers[name] as AnyUnary, token);
    }
    return handlers;
  }

  /** Admin RPCs change what is indexed: they need `authorization: Bearer <token>`, compared in constant time. */
  private requireAdmin(handler: AnyUnary, token: string): AnyUnary {
    const expected = digest(token);
    return (call, callback) => {
      const header = call.metadata.get('authorization')[0];
      const given = typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7) : null;
      if (given === null || !timingSafeEqual(digest(given), expected)) {
        callback({ code: status.UNAUTHENTICATED, details: 'admin RPCs need the header authorization: Bearer <token>' });
        return;
      }
      handler(call, callback);
    };
  }

  private kvIndexerOperations(): UntypedServiceImplementation {
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

  /** Adapts an async operation: cancellation/deadline → a flag, ApiError → status with the field in details. */
  private unary<Req, Res>(fn: (req: Req, cancelled: Cancellation) => Promise<Res>) {
    return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
      const cancelled = { aborted: false };
      call.on('cancelled', () => (cancelled.aborted = true));
      let result: Promise<Res>;
      try {
        result = fn(call.request, cancelled);
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
