import { IndexerClient } from './indexer-client.js';
import type { SimulationIndexer } from './run.js';
import { embeddedConfig, startEmbedded, type EmbeddedService } from '../../service/embedded.js';
import type { RunningService } from '../../service/start-service.js';

/**
 * The real service (in-memory index, gRPC on a free port, src/service/embedded.ts), started for one fleet-simulator
 * run; the run itself (run.ts) only sees it as a SimulationIndexer.
 */
export class EmbeddedIndexer implements SimulationIndexer {
  private constructor(
    readonly embedded: EmbeddedService,
    readonly client: IndexerClient,
  ) {}

  static async start(blockSize: number, prefillTokensPerSecond = 10_000): Promise<EmbeddedIndexer> {
    // Connect mode only: the simulated endpoints are added with AddEndpoint. Select assumes the simulated prefill
    // rate. Speculative entries (which a reserving Select writes) live 1 ms: the run waits for every event before a
    // decision, so they would add nothing, and they would count in the end-of-run comparison of index and caches.
    const embedded = await startEmbedded(
      embeddedConfig({
        keys: { blockSize },
        zmq: { addresses: [] },
        api: { speculativeTtlMs: 1 },
        select: { prefillTokensPerSecond },
      }),
    );
    return new EmbeddedIndexer(embedded, new IndexerClient(embedded.grpcAddress));
  }

  get service(): RunningService {
    return this.embedded.service;
  }

  lastSeq(endpoint: string): bigint | null {
    return this.service.transport.listEndpoints().find((e) => e.identity === endpoint)?.lastSeq ?? null;
  }

  async stop(): Promise<void> {
    this.client.close();
    await this.embedded.stop();
  }
}
