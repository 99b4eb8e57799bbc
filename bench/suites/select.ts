import { credentials, loadPackageDefinition, type Client, type GrpcObject, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { LOADER_OPTIONS } from '../../src/api/index.js';
import { embeddedConfig, startEmbedded } from '../../src/service/embedded.js';
import { percentile, rng, type Figure, type Suite } from '../harness.js';
import { BENCH_CANDIDATES, BENCH_PROMPT_TOKENS, indexResidentPrompts } from '../support/resident-prompts.js';
import { selectOverRedis } from './select-redis.js';

const CANDIDATES = BENCH_CANDIDATES.length;
const PROMPT_TOKENS = BENCH_PROMPT_TOKENS;
/** Calls in flight over gRPC (closed loop, one connection). */
const CONCURRENCY = 4;

type Call = (req: object) => Promise<unknown>;

/**
 * Select next to Score in the same run, on the same index and requests (grpc.ts's resident prompts, minimal: no
 * background ingest, no separate load process): in process (the API objects called directly, one call at a time) and
 * over gRPC (a proto-loader client in this process, CONCURRENCY calls in flight). Select with `reserve` is measured
 * too, each reservation released after (the release is not timed). Then Select over a Redis index with the ledger in
 * memory and in Redis (select-redis.ts), in process.
 */
export const selectSuite: Suite = {
  name: 'select',
  description:
    'Select vs Score (tokens in, 16 candidates): in process and over gRPC, same run; Select over Redis, ledger in memory and in Redis',
  async run({ quick }) {
    const calls = quick ? 2_000 : 20_000;
    // No per-caller bound on speculative entries: every reserving call adds its 64 blocks for 2 s.
    const embedded = await startEmbedded(
      embeddedConfig({ zmq: { addresses: [] }, api: { maxSpeculativePerCaller: 0 } }),
    );
    const { api } = embedded;
    const endpoints = BENCH_CANDIDATES;
    const prompts = indexResidentPrompts(embedded, rng(7));
    // In process the request is what proto-loader would hand over (`input` names the oneof member).
    const requests = prompts.map((tokens) => ({
      model: 'model',
      input: 'tokens',
      tokens: { tokenIds: tokens, items: [] },
      candidates: endpoints,
      tierWeights: {},
    }));
    const client = grpcClient(embedded.grpcAddress);
    try {
      const inProcess = {
        score: (req: object) => api.api.score(req as never),
        select: (req: object) => api.select.select(req as never),
        selectReserve: (req: object) => api.select.select({ ...req, reserve: true } as never),
      };
      const grpc = {
        score: (req: object) => client.call('Score', req),
        select: (req: object) => client.call('Select', req),
        selectReserve: (req: object) => client.call('Select', { ...req, reserve: true }),
      };
      const release = async (res: unknown) => {
        const id = (res as { reservationId?: string }).reservationId;
        if (id) await api.select.releaseReservation({ reservationId: id });
      };
      // Warm-up: JIT and the token cache of both paths.
      await measure(inProcess.score, requests, 500, 1, release);
      await measure(inProcess.select, requests, 500, 1, release);
      const figures: Record<string, Figure> = {};
      for (const [where, fns, concurrency] of [
        ['inProcess', inProcess, 1],
        ['grpc', grpc, CONCURRENCY],
      ] as const) {
        for (const [name, fn] of Object.entries(fns)) {
          const lat = await measure(fn, requests, calls, concurrency, release);
          figures[`${where}${cap(name)}P50`] = { value: percentile(lat, 50), unit: 'ms' };
          figures[`${where}${cap(name)}P99`] = { value: percentile(lat, 99), unit: 'ms' };
        }
      }
      figures.reservationsLeft = { value: Number(api.select.stats().inflightReservations), unit: 'reservations' };
      Object.assign(figures, await selectOverRedis(quick ? 1_000 : 10_000));
      return {
        parameters: {
          calls,
          candidates: CANDIDATES,
          promptTokens: PROMPT_TOKENS,
          grpcConcurrency: CONCURRENCY,
          inProcessConcurrency: 1,
          policy: 'cache+load (default)',
        },
        figures,
      };
    } finally {
      client.close();
      await embedded.stop();
    }
  },
};

/** Latencies (ms) of `n` calls, `concurrency` in flight, cycling through the requests; `after` runs untimed. */
async function measure(
  fn: Call,
  requests: object[],
  n: number,
  concurrency: number,
  after: (res: unknown) => Promise<void>,
): Promise<Float64Array> {
  const lat = new Float64Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const t0 = performance.now();
      const res = await fn(requests[i % requests.length]);
      lat[i] = performance.now() - t0;
      await after(res);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return lat;
}

function cap(s: string): string {
  return s[0].toUpperCase() + s.slice(1);
}

function grpcClient(address: string) {
  const def = loadSync('kvindexer/v1/kvindexer.proto', LOADER_OPTIONS);
  const Ctor = ((loadPackageDefinition(def).kvindexer as GrpcObject).v1 as GrpcObject).KvIndexer as unknown as new (
    a: string,
    c: ReturnType<typeof credentials.createInsecure>,
  ) => Client;
  const client = new Ctor(address, credentials.createInsecure()) as Client &
    Record<string, (req: object, cb: (err: ServiceError | null, res: unknown) => void) => void>;
  return {
    call: (method: string, req: object) =>
      new Promise<unknown>((resolve, reject) => client[method](req, (err, res) => (err ? reject(err) : resolve(res)))),
    close: () => client.close(),
  };
}
