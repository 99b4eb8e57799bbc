import type { SimulatedRequest } from './workloads.js';

/**
 * What a text-only ("approximate") router sees of a request: the prompt as characters, cut into fixed-size chunks
 * whose hashes chain (each chunk's hash covers every character before it), as the Gateway API Inference Extension's
 * approximate prefix plugin does (64-character blocks, at most 256 of them per request). The simulator has token
 * ids, not text, so each token is spelled as 1–7 characters fixed by its id (4 on average, the usual
 * characters-per-token figure), and an image is the URL it was sent as.
 *
 * Chunk hashes are 53-bit numbers made of two 32-bit FNV-1a lanes (the plugin uses xxhash64; any hash without
 * collisions makes the same decisions).
 */
export interface ChunkOptions {
  chunkChars: number;
  maxChunks: number;
}

export const APPROXIMATE_DEFAULTS: ChunkOptions = { chunkChars: 64, maxChunks: 256 };

const FNV_PRIME = 0x01000193;

class ChunkHasher {
  readonly hashes: number[] = [];
  private a = 0x811c9dc5;
  private b = 0x050c5d1f;
  private chars = 0;

  constructor(private readonly options: ChunkOptions) {}

  get full(): boolean {
    return this.hashes.length >= this.options.maxChunks;
  }

  push(code: number): void {
    this.a = Math.imul(this.a ^ code, FNV_PRIME);
    this.b = Math.imul(this.b ^ (code + 0x9e), FNV_PRIME);
    if (++this.chars === this.options.chunkChars) {
      // The next chunk starts from this chunk's state, so a chunk's hash stands for the whole prefix.
      this.hashes.push((this.a >>> 0) * 0x200000 + ((this.b >>> 0) & 0x1fffff));
      this.chars = 0;
    }
  }
}

/** The characters a token id is spelled with (deterministic, 1–7 lowercase letters). */
export function tokenSpelling(token: number, visit: (code: number) => void): void {
  let x = Math.imul(token ^ 0x5bd1e995, 0x2c1b3c6d) >>> 0;
  const length = 1 + (x % 7);
  for (let i = 0; i < length; i++) {
    x = Math.imul(x ^ (x >>> 15), 0x297a2d39) >>> 0;
    visit(97 + (x % 26));
  }
}

/** The request's chained chunk hashes (only full chunks, at most maxChunks). */
export function chunkHashes(
  request: Pick<SimulatedRequest, 'prompt' | 'imageUrls'>,
  options: ChunkOptions = APPROXIMATE_DEFAULTS,
): number[] {
  const hasher = new ChunkHasher(options);
  const push = (code: number) => hasher.push(code);
  const { tokens, items } = request.prompt;
  let next = 0;
  const order = items
    .map((item, i) => ({ item, url: request.imageUrls[i] }))
    .sort((x, y) => x.item.offset - y.item.offset);
  for (const { item, url } of order) {
    for (; next < item.offset && !hasher.full; next++) tokenSpelling(tokens[next], push);
    for (let i = 0; i < url.length && !hasher.full; i++) push(url.charCodeAt(i));
    next = item.offset + item.length;
  }
  for (; next < tokens.length && !hasher.full; next++) tokenSpelling(tokens[next], push);
  return hasher.hashes.slice(0, options.maxChunks);
}
