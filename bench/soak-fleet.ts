/**
 * The simulated fleet of the soak (bench/soak.ts), in a CHILD PROCESS: vLLM's publishers live in their own processes,
 * and here too their memory (encoded batches, ZeroMQ send queues, each publisher's replay buffer) and their CPU stay
 * out of the soaked service's RSS, heap, GC and event loop. Started with child_process.fork (tsx loader).
 *   parent → { type: 'start', endpoint, stepsPerSecond }   child → { type: 'ready', requests, candidates }
 *   parent → { type: 'run', seconds }                       child → { type: 'done', published }
 * `requests`: Score requests for prompts the fleet serves (shared system prompts), for the Score client.
 */
import { SimFleet } from '../src/sim/publisher/fleet.js';
import { SimPublisher } from '../src/sim/publisher/publisher.js';
import { ChatWorkload } from '../src/sim/publisher/workload.js';

const MODEL = 'Qwen/Qwen3-8B';
const ENDPOINTS = 4;

type Message = { type: 'start'; endpoint: string; stepsPerSecond: number } | { type: 'run'; seconds: number };

// The fleet: bounded GPU pools (so evictions flow), CPU offload on half of the endpoints.
const fleet = new SimFleet(
  Array.from({ length: ENDPOINTS }, (_, e) => ({
    endpoint: `10.0.0.${e + 1}:8000`,
    model: MODEL,
    gpuBlocks: 1_024,
    cpuBlocks: e % 2 === 0 ? 512 : 0,
    style: {
      encoding: e % 2 === 0 ? ('map' as const) : ('array' as const),
      hashes: e % 3 === 0 ? ('bytes' as const) : ('int' as const),
    },
  })),
);
const workload = new ChatWorkload(fleet, {
  seed: 7,
  systemPrompts: 6,
  systemPromptTokens: [256, 1024],
  newChatShare: 0.3,
  loraShare: 0.1,
  loraName: 'adapter',
  imageShare: 0.05,
  imageTokens: [64, 256],
  openChats: 48,
});
const publishers = new Map<string, SimPublisher>();
let stepsPerSecond = 20;

async function start(endpoint: string): Promise<void> {
  for (const identity of fleet.identities()) {
    // No replay ROUTER here, so the replay buffer only needs to exist, not to hold vLLM's 10,000 batches.
    const pub = new SimPublisher({ topic: `kv@${identity}@${MODEL}`, endpoint, bufferSteps: 16 });
    await pub.start();
    publishers.set(identity, pub);
  }
  await new Promise((r) => setTimeout(r, 500)); // let the subscriptions propagate before the first batch
  const candidates = fleet.identities();
  const requests = Array.from({ length: 32 }, () => {
    const chat = workload.run(1)[0];
    return { model: MODEL, tokens: { tokenIds: Array.from(chat.request.tokens) }, candidates };
  });
  process.send!({ type: 'ready', requests });
}

async function run(seconds: number): Promise<void> {
  let published = 0;
  const end = Date.now() + seconds * 1000;
  await new Promise<void>((resolve) => {
    const traffic = setInterval(() => {
      if (Date.now() >= end) {
        clearInterval(traffic);
        resolve();
        return;
      }
      workload.run(ENDPOINTS);
      for (const b of fleet.step()) {
        void publishers.get(b.identity)!.publish(b.payload);
        published++;
      }
    }, 1000 / stepsPerSecond);
  });
  await new Promise((r) => setTimeout(r, 200)); // let the last sends leave
  for (const pub of publishers.values()) await pub.close();
  process.send!({ type: 'done', published }, () => process.disconnect());
}

process.on('message', (msg: Message) => {
  const step = msg.type === 'start' ? ((stepsPerSecond = msg.stepsPerSecond), start(msg.endpoint)) : run(msg.seconds);
  step.catch((err: unknown) => {
    process.send!({ type: 'error', message: String((err as Error)?.stack ?? err) }, () => process.exit(1));
  });
});
