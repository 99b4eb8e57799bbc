/**
 * The grpc suite's background ingest (bench/suites/grpc.ts), as a reusable piece for the spike harnesses: BlockStored
 * events of 16 blocks at a fixed rate, each evicting the oldest 16 (BlockRemoved) once RESIDENT_BLOCKS are held.
 * `apply` receives the events (so a harness can apply them in process, or encode and forward them).
 */
import type { BlockRemovedEvent, BlockStoredEvent, KvEvent } from '../../src/events/types.js';
import { realisticTokens } from '../harness.js';

export const RESIDENT_BLOCKS = 1 << 20;

export type ApplyFn = (endpoint: string, events: KvEvent[]) => void;

export function ingestGenerator(endpoints: string[], random: () => number, residentBlocks = RESIDENT_BLOCKS) {
  const tokenPool = Array.from({ length: 64 }, () => realisticTokens(256, random));
  const ring = new BigUint64Array(residentBlocks);
  const ringWords = new Uint32Array(ring.buffer);
  const slots = residentBlocks / 16;
  let events = 0;
  /** The events of one 16-block store (a removal first once the ring is full), for one endpoint. */
  const next = (): { endpoint: string; events: KvEvent[] } => {
    const slot = events % slots;
    const endpoint = endpoints[events % endpoints.length];
    const hashes = ring.subarray(slot * 16, slot * 16 + 16);
    const out: KvEvent[] = [];
    if (events >= slots)
      out.push({
        type: 'BlockRemoved',
        blockHashes: hashes.slice(),
        medium: 'GPU',
        groupIdx: null,
      } as BlockRemovedEvent);
    for (let w = slot * 32; w < slot * 32 + 32; w++) ringWords[w] = (random() * 2 ** 32) >>> 0;
    const ev: BlockStoredEvent = {
      type: 'BlockStored',
      blockHashes: hashes,
      parentBlockHash: null,
      tokenIds: tokenPool[events++ % tokenPool.length],
      blockSize: 16,
      loraId: null,
      medium: 'GPU',
      loraName: null,
      extraKeys: null,
      groupIdx: null,
      kvCacheSpecKind: null,
      kvCacheSpecSlidingWindow: null,
      cacheSalt: null,
    };
    out.push(ev);
    return { endpoint, events: out };
  };
  return {
    slots,
    get events() {
      return events;
    },
    next,
    /** Fills the ring (RESIDENT_BLOCKS resident) through `apply`. */
    fill(apply: ApplyFn) {
      while (events < slots) {
        const n = next();
        apply(n.endpoint, n.events);
      }
    },
    /** Every 10 ms, the events due at `blocksPerSecond` (a late timer catches up). Returns a stop function. */
    start(apply: ApplyFn, blocksPerSecond: number, slice?: number): () => void {
      const started = performance.now();
      const before = events;
      let stopped = false;
      const tick = () => {
        if (stopped) return;
        const due = before + Math.floor(((performance.now() - started) / 1000) * (blocksPerSecond / 16)) - events;
        // slice: events applied per turn of the loop (setImmediate between slices), else all at once.
        const n = slice ? Math.min(due, slice) : due;
        for (let e = 0; e < n; e++) {
          const x = next();
          apply(x.endpoint, x.events);
        }
        if (slice && due > slice) setImmediate(tick);
      };
      const timer = setInterval(tick, 10);
      return () => {
        stopped = true;
        clearInterval(timer);
      };
    },
  };
}
