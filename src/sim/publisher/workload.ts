import type { SimFleet } from './fleet.js';
import type { SimItem, SimRequest } from './sim-engine.js';

/** Deterministic PRNG (xorshift32) so scenarios regenerate byte for byte. */
export function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

export const IMAGE_PLACEHOLDER_TOKEN = 151_655;

export interface WorkloadOptions {
  seed: number;
  /** Shared system prompts (every new chat starts with one of them). */
  systemPrompts: number;
  systemPromptTokens: [number, number];
  /** Chance that a request starts a new chat (else a random open chat takes its next turn). */
  newChatShare: number;
  /** Chance that a new chat runs on the LoRA adapter. */
  loraShare: number;
  loraName: string;
  /** Chance that a user turn carries an image. */
  imageShare: number;
  imageTokens: [number, number];
  /** Open chats kept (the oldest is closed beyond). */
  openChats: number;
}

export interface Chat {
  identity: string;
  request: SimRequest;
}

/**
 * Multi-turn chat traffic: chats start from one of a few shared system prompts, each turn appends the assistant's
 * reply and a new user message (sometimes with an image), and the whole conversation is served again on the chat's
 * endpoint, so prefixes are shared across turns and across chats.
 */
export class ChatWorkload {
  readonly chats: Chat[] = [];
  private readonly random: () => number;
  private readonly systemPrompts: number[][];
  private images = 0;

  constructor(
    private readonly fleet: SimFleet,
    private readonly options: WorkloadOptions,
  ) {
    this.random = prng(options.seed);
    this.systemPrompts = Array.from({ length: options.systemPrompts }, () =>
      this.tokens(this.between(options.systemPromptTokens)),
    );
  }

  /** Serves `requests` requests (new chats or next turns). Returns the requests served. */
  run(requests: number): Chat[] {
    const served: Chat[] = [];
    for (let i = 0; i < requests; i++) {
      const chat =
        this.chats.length === 0 || this.random() < this.options.newChatShare ? this.newChat() : this.nextTurn();
      this.fleet.serve(chat.identity, chat.request);
      served.push({ identity: chat.identity, request: cloneRequest(chat.request) });
    }
    return served;
  }

  /** A request sharing only a system prompt with the chats (a new user's first turn), not served. */
  probe(systemPrompt: number, lora: string | null): SimRequest {
    return { tokens: [...this.systemPrompts[systemPrompt], ...this.tokens(40)], loraName: lora, items: [] };
  }

  private newChat(): Chat {
    const ids = this.fleet.identities();
    const identity = ids[Math.floor(this.random() * ids.length)];
    const system = this.systemPrompts[Math.floor(this.random() * this.systemPrompts.length)];
    const lora = this.random() < this.options.loraShare ? this.options.loraName : null;
    const chat: Chat = { identity, request: { tokens: [...system], loraName: lora, items: [] } };
    this.appendUser(chat.request);
    this.chats.push(chat);
    if (this.chats.length > this.options.openChats) this.chats.shift();
    return chat;
  }

  private nextTurn(): Chat {
    const chat = this.chats[Math.floor(this.random() * this.chats.length)];
    chat.request.tokens.push(...this.tokens(this.between([20, 120])));
    this.appendUser(chat.request);
    return chat;
  }

  private appendUser(req: SimRequest): void {
    const tokens = req.tokens;
    tokens.push(...this.tokens(this.between([8, 40])));
    if (this.random() < this.options.imageShare) {
      const length = this.between(this.options.imageTokens);
      const item: SimItem = {
        identifier: `img-${(++this.images).toString(16).padStart(8, '0')}-${this.options.seed}`,
        offset: tokens.length,
        length,
      };
      (req.items as SimItem[]).push(item);
      for (let i = 0; i < length; i++) tokens.push(IMAGE_PLACEHOLDER_TOKEN);
    }
    tokens.push(...this.tokens(this.between([8, 60])));
  }

  private between([lo, hi]: [number, number]): number {
    return lo + Math.floor(this.random() * (hi - lo + 1));
  }

  private tokens(n: number): number[] {
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) out[i] = Math.min(151_642, Math.floor(Math.exp(this.random() * Math.log(151_643))));
    return out;
  }
}

export function cloneRequest(req: SimRequest): SimRequest {
  return { tokens: [...req.tokens], loraName: req.loraName ?? null, items: (req.items ?? []).map((i) => ({ ...i })) };
}
