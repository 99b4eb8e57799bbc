import { encode } from '@msgpack/msgpack';
import { startService, type RunningService } from '../../src/service/start-service.js';
import type { ExpectedState } from '../../src/sim/publisher/scenarios.js';
import { groundTruth } from '../../src/sim/publisher/scenarios.js';
import { SimFleet, type SimBatch, type SimEndpointConfig } from '../../src/sim/publisher/fleet.js';
import { SimPublisher } from '../../src/sim/publisher/publisher.js';
import { ChatWorkload } from '../../src/sim/publisher/workload.js';
import { ConfigSchema, createLogger } from '../../src/ops/index.js';
import { waitFor } from './zmq.js';

export const MODEL = 'Qwen/Qwen3-8B';

/** A service on ephemeral 127.0.0.1 ports; `settings` are merged into the config sections. */
export async function testService(settings: Record<string, Record<string, unknown>> = {}): Promise<RunningService> {
  const config = ConfigSchema.parse({
    ...settings,
    zmq: { mode: 'bind', addresses: ['tcp://127.0.0.1:*'], ...settings.zmq },
    replay: { timeoutMs: 2_000, cooldownMs: 0, ...settings.replay },
    log: { level: 'silent', statsIntervalSeconds: 0 },
  });
  return startService(config, createLogger('silent'));
}

/** Chat traffic on a simulated fleet: the batches it published, and the state the index must reach. */
export function chatTraffic(endpoints: SimEndpointConfig[], steps: number, seed = 3) {
  const fleet = new SimFleet(endpoints);
  const workload = new ChatWorkload(fleet, {
    seed,
    systemPrompts: 2,
    systemPromptTokens: [64, 160],
    newChatShare: 0.4,
    loraShare: 0.2,
    loraName: 'sql-adapter',
    imageShare: 0.2,
    imageTokens: [32, 64],
    openChats: 8,
  });
  const batches: SimBatch[] = [];
  for (let i = 0; i < steps; i++) {
    workload.run(2);
    batches.push(...fleet.step());
  }
  const truth = groundTruth(
    fleet,
    workload.chats.map((c) => c.request),
    MODEL,
  );
  const expected: ExpectedState = {
    recording: '',
    description: '',
    blockSize: fleet.blockSize,
    hashSeed: '',
    messages: batches.length,
    endpoints: truth.endpoints,
    counters: { restarts: 0, clearedEvents: 0 },
    samples: truth.samples,
  };
  return { fleet, batches, expected };
}

/** A simulated vLLM publisher whose PUB binds an ephemeral port (connect mode), with a replay ROUTER unless told not. */
export async function boundPublisher(
  topic: string,
  options: { replay?: boolean; layout?: 'old' | 'new'; bufferSteps?: number } = {},
) {
  const pub = new SimPublisher({
    topic,
    endpoint: 'tcp://127.0.0.1:*',
    replayEndpoint: options.replay === false ? null : 'tcp://127.0.0.1:*',
    replayLayout: options.layout ?? 'new',
    bufferSteps: options.bufferSteps,
  });
  await pub.start();
  const spec = `${pub.pubAddress!}${pub.replayAddress ? `;replay=${pub.replayAddress}` : ''}`;
  return { pub, spec };
}

export const EMPTY_BATCH = Buffer.from(encode([0, [], null]));

/** Probe identities used by untilSubscribed (kept in the pipeline: forgetting them would race with late probes). */
export const isProbe = (identity: string) => identity.startsWith('127.0.0.') && identity.endsWith(':1');

/** Endpoint listings without the probes. */
export function endpointsOf(service: RunningService) {
  return service.pipeline.listEndpoints().filter((e) => !isProbe(e.identity));
}

/**
 * Blocks until the service receives what `pub` sends: sends probes (seq 0, an empty batch) on a throw-away topic
 * until the pipeline has seen one (a PUB drops what it sends before the subscription reaches it). Late probes are
 * harmless duplicates of that identity.
 */
let probes = 0;

export async function untilSubscribed(
  service: RunningService,
  pub: SimPublisher,
  probeEndpoint = `127.0.0.${++probes}:1`,
): Promise<void> {
  const seen = () => service.pipeline.endpoints().has(probeEndpoint);
  const deadline = Date.now() + 5_000;
  while (!seen()) {
    if (Date.now() > deadline) throw new Error('publisher never reached the service');
    await pub.sendRaw([`kv@${probeEndpoint}@probe`, Buffer.alloc(8), EMPTY_BATCH]);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Publishes batches in order on their publisher (by identity → publisher). */
export async function publishAll(batches: readonly SimBatch[], pubs: Map<string, SimPublisher>): Promise<void> {
  for (const b of batches) await pubs.get(b.identity)!.publish(b.payload);
}

export async function untilApplied(
  service: RunningService,
  identity: string,
  lastSeq: bigint,
  what = identity,
): Promise<void> {
  await waitFor(() => {
    const s = service.pipeline.stream(identity);
    return s !== undefined && s.last === lastSeq && s.queued === 0 && !s.replaying;
  }, `${what} applied through seq ${lastSeq}`);
}
