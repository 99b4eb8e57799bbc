/**
 * An LRU set of resident blocks (one tier of one engine), keyed by the normalised engine hash. Map insertion order
 * is the recency order: touch() moves a block to the most recent end; victims come from the oldest end.
 */
export interface SimBlock {
  /** Normalised engine key (uint64). */
  key: bigint;
  /** The wire hash (32 bytes). */
  hash: Uint8Array;
  parent: Uint8Array | null;
  tokens: number[];
  extra: (string | [string, number])[] | null;
  loraName: string | null;
}

export class BlockPool {
  private readonly blocks = new Map<bigint, SimBlock>();

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.blocks.size;
  }

  has(key: bigint): boolean {
    return this.blocks.has(key);
  }

  get(key: bigint): SimBlock | undefined {
    return this.blocks.get(key);
  }

  touch(key: bigint): void {
    const b = this.blocks.get(key);
    if (!b) return;
    this.blocks.delete(key);
    this.blocks.set(key, b);
  }

  insert(block: SimBlock): void {
    this.blocks.delete(block.key);
    this.blocks.set(block.key, block);
  }

  delete(key: bigint): boolean {
    return this.blocks.delete(key);
  }

  /** The least recently used block not in `pinned`, or undefined. */
  victim(pinned: ReadonlySet<bigint>): SimBlock | undefined {
    for (const b of this.blocks.values()) if (!pinned.has(b.key)) return b;
    return undefined;
  }

  keys(): bigint[] {
    return [...this.blocks.keys()];
  }

  clear(): void {
    this.blocks.clear();
  }
}
