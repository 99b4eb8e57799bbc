import { beforeEach, describe, expect, it } from 'vitest';
import { Ingestor } from '../../../src/events/ingest/index.js';
import { MemoryIndex, TierRegistry } from '../../../src/index/index.js';
import { BlockHasher, blockExtras, type BlockExtra } from '../../../src/keys/index.js';
import { Scorer } from '../../../src/scoring/index.js';
import { mm, placeholder, removed, seq, stored, str } from '../../support/events.js';

const MODEL = 'Qwen/Qwen3-8B';
const A = '10.0.0.1:8000';
const B = '10.0.0.2:8000';

function setup(blockSize = 16) {
  const tiers = new TierRegistry();
  const hasher = new BlockHasher({ blockSize, hashSeed: '' });
  const index = new MemoryIndex({ tiers, shards: 4 });
  const ingestor = new Ingestor({ hasher, writer: index, tiers });
  const scorer = new Scorer(index, tiers);
  /** Matched blocks per candidate for a prompt, through the read path's own hashing. */
  const match = async (
    tokens: number[],
    candidates = [A, B],
    model = MODEL,
    extras: readonly BlockExtra[] | null = null,
  ) => {
    const result = await scorer.score(hasher.keysFor(model, tokens, extras), { candidates });
    return Object.fromEntries(result.scores.map((s) => [s.endpoint, s.matchedBlocks]));
  };
  return { tiers, hasher, index, ingestor, scorer, match };
}

describe('ingest: dual-key rules', () => {
  let t: ReturnType<typeof setup>;
  beforeEach(() => {
    t = setup();
  });

  it('chains across batches: a child store continues from its parent engine key', async () => {
    t.ingestor.applySync(A, MODEL, [stored([101, 102], null, seq(32), 16)]);
    t.ingestor.applySync(A, MODEL, [stored([103], 102, seq(16, 33), 16)]);
    expect(await t.match(seq(48))).toEqual({ [A]: 3, [B]: 0 });
    // The engine keys map to exactly the request keys the read path computes.
    expect(t.index.entriesOf(A)).toBe(3);
    expect(t.ingestor.counters.requestKeysAdded).toBe(3);
  });

  it('skips and counts blocks whose parent engine key is unknown', async () => {
    t.ingestor.applySync(A, MODEL, [stored([201, 202], 999, seq(32, 17), 16)]);
    expect(t.ingestor.counters.parentUnknown).toBe(2);
    expect(t.index.entriesOf(A)).toBe(0);
    expect(await t.match(seq(48))).toEqual({ [A]: 0, [B]: 0 });
  });

  it('maps 16-token engine blocks onto 64-token canonical blocks, completing a block across events', async () => {
    t = setup(64);
    // Event 1 ends inside canonical block 0 (32 of 64 tokens); event 2 completes it and adds one more block.
    t.ingestor.applySync(A, MODEL, [stored([1, 2], null, seq(32), 16)]);
    expect(t.index.entriesOf(A)).toBe(0);
    t.ingestor.applySync(A, MODEL, [stored([3, 4, 5, 6, 7, 8], 2, seq(96, 33), 16)]);
    expect(await t.match(seq(128))).toEqual({ [A]: 2, [B]: 0 });
    // A canonical block is held only while every engine block it spans is: the first removal of one drops it.
    t.ingestor.applySync(A, MODEL, [removed([6])]);
    expect(await t.match(seq(128))).toEqual({ [A]: 1, [B]: 0 });
    expect(t.index.entriesOf(A)).toBe(1);
    t.ingestor.applySync(A, MODEL, [removed([8]), removed([7]), removed([5])]);
    expect(await t.match(seq(128))).toEqual({ [A]: 1, [B]: 0 });
    // Block 0 spans engine blocks 1 and 2 of the first event and 3 and 4 of the second: removing 1 drops it.
    t.ingestor.applySync(A, MODEL, [removed([1])]);
    expect(await t.match(seq(128))).toEqual({ [A]: 0, [B]: 0 });
    expect(t.index.entriesOf(A)).toBe(0);
  });

  it('maps 64-token engine blocks onto 16-token canonical blocks (1:many) and chains from the last of them', async () => {
    t.ingestor.applySync(A, MODEL, [stored([1], null, seq(64), 64)]);
    t.ingestor.applySync(A, MODEL, [stored([2], 1, seq(64, 65), 64)]);
    expect(await t.match(seq(128))).toEqual({ [A]: 8, [B]: 0 });
    t.ingestor.applySync(A, MODEL, [removed([2])]);
    expect(await t.match(seq(128))).toEqual({ [A]: 4, [B]: 0 });
  });

  it('keeps the CPU tier after a GPU eviction (offload placeholder without tokens)', async () => {
    t.ingestor.applySync(A, MODEL, [stored([1, 2], null, seq(32), 16), placeholder([1, 2], 'CPU')]);
    t.ingestor.applySync(A, MODEL, [removed([1, 2], 'GPU')]);
    const result = await t.scorer.score(t.hasher.keysFor(MODEL, seq(32)), { candidates: [A] });
    expect(result.scores[0]).toEqual({
      endpoint: A,
      matchedBlocks: 2,
      weighted: 1.6,
      normalized: 0.8,
      blocksByTier: { CPU: 2 },
      speculativeBlocks: 0,
    });
    expect(await t.index.endpointEntries(A)).toEqual({ CPU: 2 });
    t.ingestor.applySync(A, MODEL, [removed([1, 2], 'CPU')]);
    expect(t.index.entriesOf(A)).toBe(0);
    expect(t.ingestor.engineKeyCount(A)).toBe(0);
  });

  it('counts placeholders of engine keys never stored with tokens', () => {
    t.ingestor.applySync(A, MODEL, [placeholder([77], 'CPU')]);
    expect(t.ingestor.counters.offloadUnknown).toBe(1);
    expect(t.index.entriesOf(A)).toBe(0);
  });

  it('needs as many removes as stores for a duplicated engine key', async () => {
    const store = stored([1], null, seq(16), 16);
    t.ingestor.applySync(A, MODEL, [store, store]);
    expect(t.ingestor.counters.duplicateStores).toBe(1);
    t.ingestor.applySync(A, MODEL, [removed([1])]);
    expect(await t.match(seq(16))).toEqual({ [A]: 1, [B]: 0 });
    t.ingestor.applySync(A, MODEL, [removed([1])]);
    expect(await t.match(seq(16))).toEqual({ [A]: 0, [B]: 0 });
    t.ingestor.applySync(A, MODEL, [removed([1])]);
    expect(t.ingestor.counters.removedUnknown).toBe(1);
  });

  it('counts an engine key repeated inside one new event as a duplicate store, mapped by its first block', async () => {
    t.ingestor.applySync(A, MODEL, [stored([1, 2, 1], null, seq(48), 16)]);
    expect(t.ingestor.counters.blocksStored).toBe(3);
    expect(t.ingestor.counters.duplicateStores).toBe(1);
    expect(t.ingestor.counters.requestKeysAdded).toBe(2);
    expect(t.ingestor.engineKeyCount(A)).toBe(2);
    // Block 2's request key was never added; key 1 needs two removes.
    expect(await t.match(seq(48))).toEqual({ [A]: 2, [B]: 0 });
    t.ingestor.applySync(A, MODEL, [removed([1])]);
    expect(await t.match(seq(48))).toEqual({ [A]: 2, [B]: 0 });
    t.ingestor.applySync(A, MODEL, [removed([1])]);
    expect(await t.match(seq(48))).toEqual({ [A]: 0, [B]: 0 });
  });

  it('treats the engine key 0 like any other, as a block and as a parent', async () => {
    t.ingestor.applySync(A, MODEL, [stored([0n, 2n ** 64n - 1n], null, seq(32), 16)]);
    t.ingestor.applySync(A, MODEL, [stored([1n << 32n], 2n ** 64n - 1n, seq(16, 33), 16)]);
    t.ingestor.applySync(B, MODEL, [stored([0n], null, seq(16), 16), stored([1n], 0n, seq(16, 17), 16)]);
    expect(await t.match(seq(48))).toEqual({ [A]: 3, [B]: 2 });
    t.ingestor.applySync(A, MODEL, [removed([0n])]);
    expect(await t.match(seq(48))).toEqual({ [A]: 0, [B]: 2 });
    expect(t.ingestor.engineKeyCount(A)).toBe(2);
  });

  it('re-emitted stores from block 0 (kv_cache_report_mode=full) are idempotent with their removes', async () => {
    t.ingestor.applySync(A, MODEL, [stored([1, 2], null, seq(32), 16)]);
    t.ingestor.applySync(A, MODEL, [stored([1, 2, 3], null, seq(48), 16)]);
    expect(await t.match(seq(48))).toEqual({ [A]: 3, [B]: 0 });
    t.ingestor.applySync(A, MODEL, [removed([3])]);
    expect(await t.match(seq(48))).toEqual({ [A]: 2, [B]: 0 });
  });

  it('AllBlocksCleared drops only that endpoint', async () => {
    t.ingestor.applySync(A, MODEL, [stored([1, 2], null, seq(32), 16)]);
    t.ingestor.applySync(B, MODEL, [stored([51, 52], null, seq(32), 16), placeholder([51], 'CPU')]);
    t.ingestor.applySync(B, MODEL, [{ type: 'AllBlocksCleared' }]);
    expect(await t.match(seq(32))).toEqual({ [A]: 2, [B]: 0 });
    expect(t.index.entriesOf(B)).toBe(0);
    expect(t.ingestor.engineKeyCount(B)).toBe(0);
    expect(t.ingestor.engineKeyCount(A)).toBe(2);
  });

  it('skips (and counts) groups that are not full attention', async () => {
    t.ingestor.applySync(A, MODEL, [
      stored([1, 2], null, seq(32), 16, { kvCacheSpecKind: 'sliding_window', groupIdx: 1 }),
      stored([3], null, seq(16), 16, { kvCacheSpecKind: 'mamba', groupIdx: 2 }),
      stored([4, 5], null, seq(32), 16, { kvCacheSpecKind: 'full_attention', groupIdx: 0 }),
    ]);
    expect(Object.fromEntries(t.ingestor.counters.skippedByKind)).toEqual({ sliding_window: 2, mamba: 1 });
    expect(await t.match(seq(32))).toEqual({ [A]: 2, [B]: 0 });
  });

  it('rejects stores whose token count does not fit their blocks', () => {
    t.ingestor.applySync(A, MODEL, [stored([1, 2], null, seq(20), 16)]);
    expect(t.ingestor.counters.tokenCountMismatch).toBe(1);
    expect(t.index.entriesOf(A)).toBe(0);
  });

  it('hashes a LoRA chain from the adapter name, so it never matches the base model', async () => {
    t.ingestor.applySync(A, MODEL, [
      stored([1, 2], null, seq(32), 16, {
        loraName: 'sql-adapter',
        loraId: 1,
        extraKeys: [[str('sql-adapter')], [str('sql-adapter')]],
      }),
    ]);
    expect(await t.match(seq(32))).toEqual({ [A]: 0, [B]: 0 });
    expect(await t.match(seq(32), [A, B], 'sql-adapter')).toEqual({ [A]: 2, [B]: 0 });
  });

  it('folds multimodal identifiers and the cache salt exactly as the read path does', async () => {
    // Image covers tokens [4, 29) of a 48-token prompt; salt on block 0.
    const extraKeys = [[mm('img', 4), str('tenant-a')], [mm('img', -12)], null];
    t.ingestor.applySync(A, MODEL, [stored([1, 2, 3], null, seq(48), 16, { extraKeys })]);
    const readExtras = blockExtras([{ identifier: 'img', offset: 4, length: 25 }], 48, 16, 'tenant-a');
    expect(await t.match(seq(48), [A], MODEL, readExtras)).toEqual({ [A]: 3 });
    // Without the identifiers nothing matches: the image taints block 0 onward.
    expect(await t.match(seq(48), [A])).toEqual({ [A]: 0 });
  });

  it('applies SGLang cache salts to block 0', async () => {
    t.ingestor.applySync(A, MODEL, [stored([1, 2], null, seq(32), 16, { cacheSalt: 'tenant-b' })]);
    expect(await t.match(seq(32), [A], MODEL, blockExtras([], 32, 16, 'tenant-b'))).toEqual({ [A]: 2 });
  });
});

describe('ingest: chain anchors (for writers that place keys by chain)', () => {
  /** A writer that needs anchors and records them per call, over an in-memory index. */
  function anchoredSetup(blockSize: number) {
    const tiers = new TierRegistry();
    const hasher = new BlockHasher({ blockSize, hashSeed: '' });
    const index = new MemoryIndex({ tiers, shards: 4 });
    const calls: { op: string; keys: bigint[]; anchors: bigint[] }[] = [];
    const record = (op: string, keys: BigUint64Array, anchors?: bigint | BigUint64Array) =>
      calls.push({ op, keys: [...keys], anchors: typeof anchors === 'bigint' ? [anchors] : [...(anchors ?? [])] });
    const writer = {
      needsAnchors: true,
      add(endpoint: string, tier: string, keys: BigUint64Array, anchors?: bigint | BigUint64Array) {
        record('add', keys, anchors);
        index.add(endpoint, tier, keys);
      },
      remove(endpoint: string, tier: string, keys: BigUint64Array, anchors?: bigint | BigUint64Array) {
        record('remove', keys, anchors);
        index.remove(endpoint, tier, keys);
      },
      clearEndpoint: (endpoint: string) => index.clearEndpoint(endpoint),
      flush: () => Promise.resolve(),
    };
    const ingestor = new Ingestor({ hasher, writer, tiers });
    return { hasher, ingestor, calls };
  }

  it('passes block 0 of the chain with every key, inherited through aligned parents', () => {
    const t = anchoredSetup(16);
    const keys = [...t.hasher.keysFor(MODEL, seq(64))];
    t.ingestor.applySync(A, MODEL, [stored([1, 2], null, seq(32), 16)]);
    t.ingestor.applySync(A, MODEL, [stored([3, 4], 2, seq(32, 33), 16)]);
    t.ingestor.applySync(A, MODEL, [removed([4, 1])]);
    expect(t.calls).toEqual([
      { op: 'add', keys: keys.slice(0, 2), anchors: [keys[0], keys[0]] },
      { op: 'add', keys: keys.slice(2, 4), anchors: [keys[0], keys[0]] },
      { op: 'remove', keys: [keys[3], keys[0]], anchors: [keys[0], keys[0]] },
    ]);
  });

  it('hands each write exactly its own keys, across events of different sizes and a growing scratch buffer', () => {
    const t = anchoredSetup(16);
    const keys = [...t.hasher.keysFor(MODEL, seq(16 * 302))];
    const engine = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => 1000 + from + i);
    t.ingestor.applySync(A, MODEL, [stored(engine(0, 1), null, seq(16), 16)]);
    t.ingestor.applySync(A, MODEL, [stored(engine(1, 2), 1000, seq(16, 17), 16)]);
    // 300 blocks: more than the scratch buffer's first 256 keys.
    t.ingestor.applySync(A, MODEL, [stored(engine(2, 302), 1001, seq(16 * 300, 33), 16)]);
    t.ingestor.applySync(A, MODEL, [removed(engine(301, 302)), removed(engine(0, 2))]);
    expect(t.calls.map((c) => [c.op, c.keys.length, c.anchors.length])).toEqual([
      ['add', 1, 1],
      ['add', 1, 1],
      ['add', 300, 300],
      ['remove', 1, 1],
      ['remove', 2, 2],
    ]);
    expect(t.calls.map((c) => c.keys)).toEqual([
      [keys[0]],
      [keys[1]],
      keys.slice(2, 302),
      [keys[301]],
      [keys[0], keys[1]],
    ]);
    expect(t.calls.every((c) => c.anchors.every((a) => a === keys[0]))).toBe(true);
  });

  it('takes the anchor from the first completed canonical block, and carries it through leftovers', () => {
    const t = anchoredSetup(64);
    const keys = [...t.hasher.keysFor(MODEL, seq(192))];
    // 32 tokens: no canonical block yet, so no anchor; the next event completes block 0 and ends 48 tokens into block 1.
    t.ingestor.applySync(A, MODEL, [stored([1, 2], null, seq(32), 16)]);
    t.ingestor.applySync(A, MODEL, [stored([3, 4, 5, 6, 7], 2, seq(80, 33), 16)]);
    // Continues from that leftover: engine block 8 completes block 1, blocks 9–12 make block 2.
    t.ingestor.applySync(A, MODEL, [stored([8, 9, 10, 11, 12], 7, seq(80, 113), 16)]);
    // One request key per canonical block, added when its last engine block is stored (blocks 5–7 completed none).
    expect(t.calls).toEqual([
      { op: 'add', keys: [keys[0]], anchors: [keys[0]] },
      { op: 'add', keys: [keys[1], keys[2]], anchors: [keys[0], keys[0]] },
    ]);
    // Engine block 5 is a piece of canonical block 1 (carried through the leftover): removing it removes that block.
    t.ingestor.applySync(A, MODEL, [removed([5])]);
    expect(t.calls[2]).toEqual({ op: 'remove', keys: [keys[1]], anchors: [keys[0]] });
  });
});
