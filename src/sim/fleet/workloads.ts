import { IMAGE_PLACEHOLDER_TOKEN } from '../publisher/workload.js';
import type { SimItem, SimRequest } from '../publisher/sim-engine.js';
import { Random, Zipf } from './random.js';

export const WORKLOADS = ['multi-turn', 'long-doc', 'image-chat', 'hot-spot', 'mixed'] as const;
export type WorkloadName = (typeof WORKLOADS)[number];

/** One request of a workload: its arrival, the prompt as the engine sees it (token ids + image items), and the reply. */
export interface SimulatedRequest {
  id: number;
  /** Arrival time, seconds from the start of the run. */
  arrival: number;
  source: Exclude<WorkloadName, 'mixed'>;
  /** The conversation (or document question) it belongs to, for reports. */
  conversation: string;
  prompt: SimRequest & { items: SimItem[] };
  /** The URL each item was sent as (same order as prompt.items): what a text-only router sees of the image. */
  imageUrls: string[];
  /** Generated tokens: cached by the engine after the prompt (the next turn's prompt repeats them). */
  output: number[];
}

export interface WorkloadOptions {
  seed: number;
  /** Requests to generate. */
  requests: number;
  /** Mean arrival rate over the whole fleet, requests per second (Poisson). */
  rate: number;
  /**
   * Share of image chats whose image is sent as a signed URL (a query string unique to the chat, as object stores
   * issue them) rather than by a URL or data URL shared by every chat that sends it. The engine hashes the pixels
   * either way. Default 0.5.
   */
  signedUrlShare?: number;
}

/** The URL an image is sent as in the chat request: what a text-only router sees of it. */
export function imageUrl(identifier: string, signature: string | null = null): string {
  return `https://images.example.com/${identifier}.jpg${signature === null ? '' : `?X-Amz-Signature=${signature}`}`;
}

/**
 * A workload's requests in arrival order. Every workload is a pure function of its options, so each routing policy
 * is run on exactly the same requests.
 */
export function generateWorkload(name: WorkloadName, options: WorkloadOptions): SimulatedRequest[] {
  if (!Number.isInteger(options.requests) || options.requests < 1)
    throw new Error(`requests must be a positive integer, got ${options.requests}`);
  if (!(options.rate > 0)) throw new Error(`rate must be > 0, got ${options.rate}`);
  const signedUrlShare = options.signedUrlShare ?? 0.5;
  if (!(signedUrlShare >= 0 && signedUrlShare <= 1))
    throw new Error(`signedUrlShare must be in [0, 1], got ${options.signedUrlShare}`);
  let requests: Omit<SimulatedRequest, 'id'>[];
  if (name === 'mixed') {
    const share = { requests: Math.ceil(options.requests / 3), rate: options.rate / 3, signedUrlShare };
    requests = [
      ...multiTurn(new Random(options.seed * 3 + 1), share),
      ...longDocuments(new Random(options.seed * 3 + 2), share),
      ...imageChats(new Random(options.seed * 3 + 3), share),
    ];
  } else {
    const generate = {
      'multi-turn': multiTurn,
      'long-doc': longDocuments,
      'image-chat': imageChats,
      'hot-spot': hotSpot,
    }[name];
    requests = generate(new Random(options.seed), { ...options, signedUrlShare });
  }
  // Stable order: by arrival, then by source and conversation (ties are impossible in practice, but determinism matters).
  requests.sort(
    (a, b) => a.arrival - b.arrival || a.source.localeCompare(b.source) || a.conversation.localeCompare(b.conversation),
  );
  return requests.slice(0, options.requests).map((r, id) => ({ ...r, id }));
}

/**
 * Chats start until this time, so that their later turns overlap the next chats' first turns for most of the run
 * and the first `requests` arrivals come at about `rate` (the run is cut at `requests`).
 */
function horizon(requests: number, rate: number): number {
  return (requests / rate) * 1.5;
}

/** Mean time between a chat's turns (the user reading and typing), seconds. */
const THINK_SECONDS = 5;

type Generator = (
  random: Random,
  options: { requests: number; rate: number; signedUrlShare: number },
) => Omit<SimulatedRequest, 'id'>[];

interface Conversation {
  name: string;
  source: SimulatedRequest['source'];
  history: number[];
  items: SimItem[];
  urls: string[];
}

/** Appends text tokens to a conversation. */
function say(c: Conversation, tokens: number[]): void {
  for (const t of tokens) c.history.push(t);
}

/** Appends an image's placeholder tokens as one item. */
function show(c: Conversation, identifier: string, length: number, url: string): void {
  c.items.push({ identifier, offset: c.history.length, length });
  c.urls.push(url);
  for (let i = 0; i < length; i++) c.history.push(IMAGE_PLACEHOLDER_TOKEN);
}

/** The current history as a request, then the reply appended to the history. */
function turn(c: Conversation, arrival: number, output: number[]): Omit<SimulatedRequest, 'id'> {
  const prompt = { tokens: [...c.history], items: c.items.map((i) => ({ ...i })), loraName: null };
  say(c, output);
  return { arrival, source: c.source, conversation: c.name, prompt, imageUrls: [...c.urls], output };
}

/**
 * Chats whose turns come back after a think time: requests share a system prompt (12, Zipf-popular) with many other
 * chats and their whole history with their own earlier turns.
 */
const multiTurn: Generator = (random, { requests, rate }) => {
  const turns: [number, number] = [2, 8];
  const meanTurns = (turns[0] + turns[1]) / 2;
  const systemPrompts = Array.from({ length: 12 }, () => random.tokens(random.between(800, 2000)));
  const popularity = new Zipf(systemPrompts.length, 1.1);
  const out: Omit<SimulatedRequest, 'id'>[] = [];
  let start = 0;
  for (let n = 0; start < horizon(requests, rate); n++) {
    start += random.exponential(rate / meanTurns);
    const c: Conversation = {
      name: `chat-${n}`,
      source: 'multi-turn',
      history: [...systemPrompts[popularity.sample(random)]],
      items: [],
      urls: [],
    };
    let at = start;
    for (let t = random.between(...turns); t > 0; t--) {
      say(c, random.tokens(random.between(30, 250)));
      out.push(turn(c, at, random.tokens(random.between(80, 400))));
      at += random.exponential(1 / THINK_SECONDS);
    }
  }
  return out;
};

/** Questions about long documents (24, Zipf-popular, 2–6k tokens): one shared instruction, the document, a question. */
const longDocuments: Generator = (random, { requests, rate }) => {
  const instruction = random.tokens(150);
  const documents = Array.from({ length: 24 }, () => random.tokens(random.between(2000, 6000)));
  const popularity = new Zipf(documents.length, 1.0);
  const out: Omit<SimulatedRequest, 'id'>[] = [];
  let at = 0;
  for (let n = 0; out.length < requests; n++) {
    at += random.exponential(rate);
    const d = popularity.sample(random);
    const c: Conversation = {
      name: `doc-${d}-q${n}`,
      source: 'long-doc',
      history: [...instruction, ...documents[d]],
      items: [],
      urls: [],
    };
    say(c, random.tokens(random.between(20, 80)));
    out.push(turn(c, at, random.tokens(random.between(60, 250))));
  }
  return out;
};

/**
 * Chats about images drawn from a pool of 60 (Zipf-popular, so the same image comes back in many chats). Each image
 * costs what Qwen2.5-VL makes of its size: one token per 28×28 pixels, 64 to 2,304 tokens.
 */
const imageChats: Generator = (random, { requests, rate, signedUrlShare }) => {
  const turns: [number, number] = [1, 4];
  const meanTurns = (turns[0] + turns[1]) / 2;
  const systemPrompts = Array.from({ length: 4 }, () => random.tokens(random.between(200, 600)));
  const images = Array.from({ length: 60 }, (_, i) => ({
    identifier: `img-${i.toString(16).padStart(4, '0')}`,
    tokens: random.between(8, 48) * random.between(8, 48),
  }));
  const imagePopularity = new Zipf(images.length, 1.0);
  const out: Omit<SimulatedRequest, 'id'>[] = [];
  let start = 0;
  for (let n = 0; start < horizon(requests, rate); n++) {
    start += random.exponential(rate / meanTurns);
    const c: Conversation = {
      name: `image-chat-${n}`,
      source: 'image-chat',
      history: [...systemPrompts[random.between(0, systemPrompts.length - 1)]],
      items: [],
      urls: [],
    };
    const signature = random.uniform() < signedUrlShare ? `sig-${n}` : null;
    let at = start;
    for (let t = random.between(...turns), first = true; t > 0; t--, first = false) {
      // The first turn opens with its image (so chats about one image share the prefix up to it); later turns
      // sometimes add another one after some text.
      if (!first) say(c, random.tokens(random.between(10, 60)));
      if (first || random.uniform() < 0.3) {
        const image = images[imagePopularity.sample(random)];
        show(c, image.identifier, image.tokens, imageUrl(image.identifier, signature));
      }
      say(c, random.tokens(random.between(10, 80)));
      out.push(turn(c, at, random.tokens(random.between(60, 300))));
      at += random.exponential(1 / THINK_SECONDS);
    }
  }
  return out;
};

/**
 * One very popular prefix: HOT_SHARE of the requests open with the same long system prompt (an agent's tool
 * definitions and instructions, say), the rest with one of 30 other prefixes (Zipf-popular); each ends with its own
 * question. A prefix-only router sends every hot request to the endpoint that holds the hot prefix: the case where
 * cache affinity has to be weighed against that endpoint's queue.
 */
const hotSpot: Generator = (random, { requests, rate }) => {
  const hot = random.tokens(4000);
  const others = Array.from({ length: 30 }, () => random.tokens(random.between(1000, 3000)));
  const popularity = new Zipf(others.length, 1.0);
  const out: Omit<SimulatedRequest, 'id'>[] = [];
  let at = 0;
  for (let n = 0; out.length < requests; n++) {
    at += random.exponential(rate);
    const isHot = random.uniform() < HOT_SHARE;
    const p = isHot ? -1 : popularity.sample(random);
    const c: Conversation = {
      name: isHot ? `hot-q${n}` : `prefix-${p}-q${n}`,
      source: 'hot-spot',
      history: [...(isHot ? hot : others[p])],
      items: [],
      urls: [],
    };
    say(c, random.tokens(random.between(50, 300)));
    out.push(turn(c, at, random.tokens(random.between(60, 300))));
  }
  return out;
};

/** Share of the hot-spot workload's requests that open with the hot prefix. */
const HOT_SHARE = 0.6;
