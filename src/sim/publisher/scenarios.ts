import type { RecordedMessage, RecordingHeader } from '../../events/recording/format.js';
import { SimFleet, type ExpectedMatch, type SimBatch, type SimEndpointConfig } from './fleet.js';
import type { SimItem, SimRequest } from './sim-engine.js';
import { ChatWorkload, cloneRequest, type WorkloadOptions } from './workload.js';
import { seqBytes } from './publisher.js';

/** One sample prompt and what every endpoint must score for it. */
export interface ExpectedSample {
  /** The chain's root: the LoRA name when the request ran on an adapter, else the model. */
  model: string;
  tokens: number[];
  items: SimItem[];
  scores: Record<string, ExpectedMatch>;
}

/** What the index must hold after a recording is applied (the `.expected.json` beside each fixture). */
export interface ExpectedState {
  recording: string;
  description: string;
  blockSize: number;
  hashSeed: string;
  messages: number;
  /** Index entries by tier per endpoint identity, from the simulator's caches. */
  endpoints: Record<string, Record<string, number>>;
  /** Transport decisions the recording must cause. */
  counters: { restarts: number; clearedEvents: number };
  samples: ExpectedSample[];
}

export interface Scenario {
  name: string;
  header: Omit<RecordingHeader, 'createdAt'>;
  messages: RecordedMessage[];
  expected: ExpectedState;
  /** The batches as published (tests use them to drive real publishers). */
  batches: SimBatch[];
}

interface ScenarioSpec {
  name: string;
  description: string;
  endpoints: SimEndpointConfig[];
  workload: WorkloadOptions;
  steps: number;
  requestsPerStep: number;
  /** step → actions on endpoints. */
  resets?: Record<number, string>;
  restarts?: Record<number, string>;
  samples: number;
}

const MODEL = 'Qwen/Qwen3-8B';
const LORA = 'sql-adapter';

export const SCENARIOS: Record<string, ScenarioSpec> = {
  'fleet-mixed': {
    name: 'fleet-mixed',
    description:
      'five endpoint ranks: array+int with CPU offload, map+bytes with an AllBlocksCleared, map+int with two data-parallel ranks and a publisher restart, array+bytes with CPU offload; shared system prompts, multi-turn chats, a LoRA adapter, images, evictions',
    endpoints: [
      {
        endpoint: '10.0.0.1:8000',
        model: MODEL,
        gpuBlocks: 160,
        cpuBlocks: 320,
        style: { encoding: 'array', hashes: 'int' },
      },
      { endpoint: '10.0.0.2:8000', model: MODEL, gpuBlocks: 220, style: { encoding: 'map', hashes: 'bytes' } },
      { endpoint: '10.0.0.3:8000', model: MODEL, ranks: 2, gpuBlocks: 110, style: { encoding: 'map', hashes: 'int' } },
      {
        endpoint: '10.0.0.4:8000',
        model: MODEL,
        gpuBlocks: 200,
        cpuBlocks: 200,
        style: { encoding: 'array', hashes: 'bytes' },
      },
    ],
    workload: {
      seed: 7,
      systemPrompts: 3,
      systemPromptTokens: [96, 220],
      newChatShare: 0.35,
      loraShare: 0.2,
      loraName: LORA,
      imageShare: 0.2,
      imageTokens: [40, 90],
      openChats: 24,
    },
    steps: 110,
    requestsPerStep: 2,
    resets: { 70: '10.0.0.2:8000' },
    restarts: { 85: '10.0.0.3:8000' },
    samples: 12,
  },
  'offload-pressure': {
    name: 'offload-pressure',
    description:
      'one endpoint under heavy memory pressure: a small GPU pool offloading to a small CPU tier (evictions on both), map events with int hashes, images and a LoRA adapter',
    endpoints: [
      {
        endpoint: '10.1.0.1:8000',
        model: MODEL,
        gpuBlocks: 64,
        cpuBlocks: 96,
        style: { encoding: 'map', hashes: 'int' },
      },
    ],
    workload: {
      seed: 11,
      systemPrompts: 2,
      systemPromptTokens: [64, 128],
      newChatShare: 0.4,
      loraShare: 0.3,
      loraName: LORA,
      imageShare: 0.3,
      imageTokens: [32, 64],
      openChats: 10,
    },
    steps: 90,
    requestsPerStep: 1,
    samples: 8,
  },
};

/** Runs a scenario on the simulator: the recording (virtual receive times) and the state it must produce. */
export function runScenario(name: string): Scenario {
  const spec = SCENARIOS[name];
  if (!spec) throw new Error(`unknown scenario ${name}; known: ${Object.keys(SCENARIOS).join(', ')}`);
  const fleet = new SimFleet(spec.endpoints);
  const workload = new ChatWorkload(fleet, spec.workload);
  const batches: SimBatch[] = [];
  let restarts = 0;
  let clearedEvents = 0;
  for (let step = 0; step < spec.steps; step++) {
    const reset = spec.resets?.[step];
    if (reset) {
      fleet.resetCache(reset);
      clearedEvents++;
    }
    const restart = spec.restarts?.[step];
    if (restart) {
      fleet.restart(restart);
      restarts++;
    }
    workload.run(spec.requestsPerStep);
    batches.push(...fleet.step());
  }
  const messages: RecordedMessage[] = batches.map((b) => ({
    time: b.ts * 1000 + 0.25,
    frames: [Buffer.from(b.topic), seqBytes(b.seq), b.payload],
  }));
  const requests = workload.chats.slice(-spec.samples).map((c) => c.request);
  requests.push(workload.probe(0, null), workload.probe(1, LORA));
  const truth = groundTruth(fleet, requests, MODEL);
  return {
    name,
    header: { source: `simulator:${name}`, format: 'vllm', note: spec.description },
    messages,
    batches,
    expected: {
      recording: `${name}.kvrec.gz`,
      description: spec.description,
      blockSize: fleet.blockSize,
      hashSeed: '',
      messages: messages.length,
      endpoints: truth.endpoints,
      counters: { restarts, clearedEvents },
      samples: truth.samples,
    },
  };
}

/** The index state the simulator's caches imply: entries by tier per endpoint and each request's expected scores. */
export function groundTruth(fleet: SimFleet, requests: readonly SimRequest[], model: string) {
  const endpoints: Record<string, Record<string, number>> = {};
  for (const id of fleet.identities()) endpoints[id] = fleet.blocksByTier(id);
  const samples: ExpectedSample[] = [];
  for (const req of requests) {
    const scores: Record<string, ExpectedMatch> = {};
    for (const id of fleet.identities()) scores[id] = fleet.expectedMatch(id, req);
    const r = cloneRequest(req);
    samples.push({ model: r.loraName ?? model, tokens: r.tokens, items: r.items as SimItem[], scores });
  }
  return { endpoints, samples };
}
