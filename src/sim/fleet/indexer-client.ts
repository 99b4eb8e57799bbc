import { credentials, loadPackageDefinition, type GrpcObject, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { LOADER_OPTIONS } from '../../api/index.js';
import type { SimItem } from '../publisher/sim-engine.js';

interface ScoreReply {
  totalBlocks: number;
  degraded: boolean;
  scores: { endpoint: string; matchedBlocks: number }[];
}

type Unary<Req, Res> = (
  req: Req,
  options: { deadline: number },
  cb: (err: ServiceError | null, res: Res) => void,
) => void;

interface SelectReply {
  endpoint: string;
  reservationId: string;
}

interface KvIndexerClient {
  Score: Unary<object, ScoreReply>;
  Select: Unary<object, SelectReply>;
  PrefillComplete: Unary<object, object>;
  ReleaseReservation: Unary<object, object>;
  AddEndpoint: Unary<{ endpoint: string; zmqAddress: string; replayAddress: string }, object>;
  close(): void;
}

/** The simulator's view of the indexer: a real kvindexer.v1 gRPC client (Score, Select and its lifecycle, AddEndpoint). */
export class IndexerClient {
  private readonly client: KvIndexerClient;

  constructor(
    address: string,
    private readonly deadlineMs = 10_000,
  ) {
    const def = loadSync('kvindexer/v1/kvindexer.proto', LOADER_OPTIONS);
    const pkg = (loadPackageDefinition(def).kvindexer as GrpcObject).v1 as GrpcObject;
    const Client = pkg.KvIndexer as unknown as new (
      address: string,
      creds: ReturnType<typeof credentials.createInsecure>,
    ) => KvIndexerClient;
    this.client = new Client(address, credentials.createInsecure());
  }

  /** Matched prefix blocks per candidate for a token prompt with image items. */
  async matchedBlocks(
    model: string,
    tokens: readonly number[],
    items: readonly SimItem[],
    candidates: readonly string[],
  ): Promise<Map<string, number>> {
    const reply = await this.call<ScoreReply>('Score', {
      model,
      tokens: {
        tokenIds: tokens,
        items: items.map((i) => ({ identifier: i.identifier, offset: i.offset, length: i.length })),
      },
      candidates,
      strict: true,
    });
    return new Map(reply.scores.map((s) => [s.endpoint, s.matchedBlocks]));
  }

  /**
   * Select with a reservation: the service picks the endpoint under `policy` (`cache+load` or `load`) and records the
   * request's uncached prefill on it until prefillDone(). No decode blocks: the simulator's cost model has no decode.
   */
  async select(
    model: string,
    tokens: readonly number[],
    items: readonly SimItem[],
    candidates: readonly string[],
    policy: string,
  ): Promise<SelectReply> {
    return this.call<SelectReply>('Select', {
      model,
      tokens: {
        tokenIds: tokens,
        items: items.map((i) => ({ identifier: i.identifier, offset: i.offset, length: i.length })),
      },
      candidates,
      policy,
      reserve: true,
      expectedOutputTokens: 0,
    });
  }

  /** The reservation's prefill finished (with the engine's cached tokens, for calibration) and the request ended. */
  async prefillDone(reservationId: string, cachedTokens: number): Promise<void> {
    await this.call('PrefillComplete', { reservationId, cachedTokens });
    await this.call('ReleaseReservation', { reservationId });
  }

  async addEndpoint(endpoint: string, zmqAddress: string, replayAddress: string): Promise<void> {
    await this.call('AddEndpoint', { endpoint, zmqAddress, replayAddress });
  }

  close(): void {
    this.client.close();
  }

  private call<T>(
    method: 'Score' | 'Select' | 'PrefillComplete' | 'ReleaseReservation' | 'AddEndpoint',
    request: object,
  ): Promise<T> {
    const fn = this.client[method] as Unary<object, T>;
    return new Promise((resolve, reject) =>
      fn.call(this.client, request, { deadline: Date.now() + this.deadlineMs }, (err, res) =>
        err ? reject(new Error(`${method}: ${err.details || err.message}`)) : resolve(res),
      ),
    );
  }
}
