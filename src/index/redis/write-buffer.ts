/**
 * Buffered writes of the Redis index between flushes, in call order. Keys are copied (callers reuse their arrays).
 *
 * Bounded: at most maxKeys buffered keys. Overflow policy: a write that would exceed the bound drops every buffered
 * write of its endpoint and is itself dropped; the endpoint is reported for resync and its further writes are ignored
 * until the next flush takes the buffer (its index state is unknown until the owner clears and rebuilds it). Other
 * endpoints' writes are untouched. While Redis is away flushes fail fast and drop their batch (marking its endpoints
 * for resync), so the buffer never holds more than one batch plus the bound.
 */

/**
 * The chain anchor(s) of a write's keys (placement 'anchor'): one request key of block 0 for all of them, or one per
 * key (a BlockRemoved or an offload event may name blocks of several chains).
 */
export type Anchors = bigint | BigUint64Array | undefined;

export type WriteOp =
  | { kind: 'a' | 'r'; endpoint: string; tier: string; keys: Uint8Array; anchor: Anchors }
  | { kind: 'c'; endpoint: string };

/** A bigint, or a BigUint64Array with one anchor per key, or nothing. */
export function checkAnchors(anchor: unknown, keys: number): asserts anchor is Anchors {
  if (anchor === undefined || typeof anchor === 'bigint') return;
  if (!(anchor instanceof BigUint64Array)) throw new TypeError('anchor must be a bigint or a BigUint64Array');
  if (anchor.length !== keys)
    throw new RangeError(`anchors must give one anchor per key: ${anchor.length} anchors for ${keys} keys`);
}

export class WriteBuffer {
  private ops: WriteOp[] = [];
  private keys = 0;
  private overflowed = new Set<string>();

  constructor(
    readonly maxKeys: number,
    private readonly onOverflow: (endpoint: string) => void,
  ) {
    if (!Number.isInteger(maxKeys) || maxKeys < 1) throw new RangeError(`maxBufferedKeys must be a positive integer`);
  }

  get size(): number {
    return this.ops.length;
  }

  get bufferedKeys(): number {
    return this.keys;
  }

  push(kind: 'a' | 'r', endpoint: string, tier: string, keys: BigUint64Array, anchor: Anchors): void {
    checkAnchors(anchor, keys.length);
    if (keys.length === 0 || this.overflowed.has(endpoint)) return;
    if (anchor instanceof BigUint64Array) anchor = anchor.slice();
    if (this.keys + keys.length > this.maxKeys) {
      this.overflow(endpoint);
      return;
    }
    const copy = new Uint8Array(keys.length * 8);
    copy.set(new Uint8Array(keys.buffer, keys.byteOffset, keys.length * 8));
    this.ops.push({ kind, endpoint, tier, keys: copy, anchor });
    this.keys += keys.length;
  }

  clear(endpoint: string): void {
    // A clear supersedes the endpoint's earlier buffered writes (and ends an overflow: the endpoint restarts clean).
    this.dropEndpoint(endpoint);
    this.overflowed.delete(endpoint);
    this.ops.push({ kind: 'c', endpoint });
  }

  /** Takes the buffered writes (the buffer starts empty again). */
  take(): WriteOp[] {
    const ops = this.ops;
    this.ops = [];
    this.keys = 0;
    this.overflowed = new Set();
    return ops;
  }

  private overflow(endpoint: string): void {
    this.dropEndpoint(endpoint);
    this.overflowed.add(endpoint);
    this.onOverflow(endpoint);
  }

  private dropEndpoint(endpoint: string): void {
    if (!this.ops.some((o) => o.endpoint === endpoint)) return;
    this.ops = this.ops.filter((o) => {
      if (o.endpoint !== endpoint) return true;
      if (o.kind !== 'c') this.keys -= o.keys.length / 8;
      return false;
    });
  }
}

/** The keys as the scripts take them: 8 bytes each, little-endian, no copy. */
export function rawKeys(keys: BigUint64Array): Buffer {
  return Buffer.from(keys.buffer, keys.byteOffset, keys.length * 8);
}
