import { describe, expect, it } from 'vitest';
import { Ingestor, type StoreBound } from '../../../src/events/ingest/index.js';
import { MemoryIndex, TierRegistry } from '../../../src/index/index.js';
import { BlockHasher } from '../../../src/keys/index.js';
import { EndpointSpecError, parseEndpointSpec } from '../../../src/events/endpoint-spec.js';
import { placeholder, removed, seq, stored } from '../../support/events.js';

function setup(blockSize = 16, defaultStoreBound: StoreBound | null = null) {
  const tiers = new TierRegistry();
  const hasher = new BlockHasher({ blockSize, hashSeed: '' });
  const index = new MemoryIndex({ tiers, shards: 2 });
  let now = 1_000_000;
  const ingestor = new Ingestor({ hasher, writer: index, tiers, defaultStoreBound, clock: () => now });
  /** Which of the prompt's canonical blocks the endpoint holds (any tier), block by block. */
  const heldBlocks = (endpoint: string, tokens: number[]) =>
    [...hasher.keysFor('m', tokens)].map(
      (k) => index.lookupSync(BigUint64Array.of(k), { candidates: [endpoint] }).length,
    );
  return { index, ingestor, heldBlocks, advance: (ms: number) => (now += ms) };
}

describe('ingest: group_idx > 0 without kv_cache_spec_kind', () => {
  // vLLM sends kv_cache_spec_kind for every group it can describe. llm-d refuses a grouped store whose kind is not
  // prefix-indexable ("unsupported_cache_kind", llm-d/llm-d-kv-cache pkg/kvevents/pool.go
  // blockStoredEventDigestible); Dynamo ignores group_idx != 0 without a kind (ai-dynamo/dynamo, lib/llm/src/kv_router
  // publisher, KvCacheEventFilter::should_ignore).
  it('is refused and counted; group 0 without a kind and group 1 with a full-attention kind are indexed', () => {
    const t = setup();
    t.ingestor.applySync('a', 'm', [stored([1, 2], null, seq(32), 16, { groupIdx: 1 })]);
    expect(t.ingestor.counters.groupWithoutKind).toBe(2);
    expect(t.index.entriesOf('a')).toBe(0);
    expect(t.ingestor.engineKeyCount('a')).toBe(0);
    t.ingestor.applySync('a', 'm', [stored([1, 2], null, seq(32), 16, { groupIdx: 0 })]);
    t.ingestor.applySync('b', 'm', [
      stored([1, 2], null, seq(32), 16, { groupIdx: 1, kvCacheSpecKind: 'full_attention' }),
    ]);
    expect(t.index.entriesOf('a')).toBe(2);
    expect(t.index.entriesOf('b')).toBe(2);
    expect(t.ingestor.counters.groupWithoutKind).toBe(2);
  });
});

describe('ingest: store bound for store-only publishers', () => {
  it('max blocks: the oldest engine blocks of that endpoint go first, counted; other endpoints keep theirs', () => {
    const t = setup();
    t.ingestor.setStoreBound('lmcache', { maxBlocks: 4, ttlMs: null });
    t.ingestor.applySync('lmcache', 'm', [stored([1, 2, 3], null, seq(48), 16)]);
    t.ingestor.applySync('lmcache', 'm', [stored([4, 5, 6], 3, seq(48, 49), 16)]);
    t.ingestor.applySync('vllm', 'm', [stored([1, 2, 3], null, seq(48), 16), stored([4, 5, 6], 3, seq(48, 49), 16)]);
    expect(t.ingestor.counters.boundDrops).toBe(2);
    expect(t.ingestor.engineKeyCount('lmcache')).toBe(4);
    expect(t.heldBlocks('lmcache', seq(96))).toEqual([0, 0, 1, 1, 1, 1]);
    expect(t.heldBlocks('vllm', seq(96))).toEqual([1, 1, 1, 1, 1, 1]);
  });

  it('a repeated store makes a block young again; a dropped block is released on every tier', () => {
    const t = setup();
    t.ingestor.setStoreBound('a', { maxBlocks: 3, ttlMs: null });
    // Store order 1, 2, 3; the CPU copies of 2 and 3 make them younger (2, 3 after 1), then 1 is stored again.
    t.ingestor.applySync('a', 'm', [stored([1, 2, 3], null, seq(48), 16), placeholder([2, 3], 'CPU')]);
    t.ingestor.applySync('a', 'm', [stored([1], null, seq(16), 16)]);
    t.ingestor.applySync('a', 'm', [stored([4], 3, seq(16, 49), 16)]);
    // Block 2 was the oldest: it goes from GPU and CPU alike.
    expect(t.heldBlocks('a', seq(64))).toEqual([1, 0, 1, 1]);
    expect(t.index.endpointEntriesSync('a')).toEqual({ GPU: 3, CPU: 1 });
    expect(t.ingestor.counters.boundDrops).toBe(1);
  });

  it('TTL: blocks not stored again within it expire, on the next batch or on a sweep', () => {
    const t = setup(16, { maxBlocks: null, ttlMs: 60_000 });
    t.ingestor.applySync('a', 'm', [stored([1, 2], null, seq(32), 16)]);
    t.advance(30_000);
    t.ingestor.applySync('a', 'm', [stored([3], 2, seq(16, 33), 16)]);
    t.advance(30_000);
    expect(t.ingestor.sweepStoreBounds()).toBe(2);
    expect(t.heldBlocks('a', seq(48))).toEqual([0, 0, 1]);
    t.advance(29_999);
    t.ingestor.applySync('b', 'm', [stored([7], null, seq(16, 900), 16)]);
    expect(t.heldBlocks('a', seq(48))).toEqual([0, 0, 1]);
    t.advance(1);
    expect(t.ingestor.sweepStoreBounds()).toBe(1);
    expect(t.index.entriesOf('a')).toBe(0);
    expect(t.index.entriesOf('b')).toBe(1);
  });

  it('dropping one engine block of a canonical block made of several drops that canonical block', () => {
    const t = setup(64);
    t.ingestor.setStoreBound('a', { maxBlocks: 7, ttlMs: null });
    t.ingestor.applySync('a', 'm', [stored([1, 2, 3, 4, 5, 6, 7, 8], null, seq(128), 16)]);
    expect(t.ingestor.counters.boundDrops).toBe(1);
    expect(t.heldBlocks('a', seq(128))).toEqual([0, 1]);
  });

  it('a bound set later applies to what the endpoint already holds; null removes it', () => {
    const t = setup();
    t.ingestor.applySync('a', 'm', [stored([1, 2, 3, 4], null, seq(64), 16)]);
    t.ingestor.setStoreBound('a', { maxBlocks: 2, ttlMs: null });
    t.ingestor.applySync('a', 'm', []);
    expect(t.ingestor.engineKeyCount('a')).toBe(2);
    expect(t.ingestor.counters.boundDrops).toBe(2);
    t.ingestor.setStoreBound('a', null);
    t.ingestor.applySync('a', 'm', [stored([1, 2, 3, 4], null, seq(64), 16)]);
    expect(t.ingestor.engineKeyCount('a')).toBe(4);
    expect(t.ingestor.counters.boundDrops).toBe(2);
  });
});

describe('ingest: key-only removals of lower-tier chunks (vLLM RFC 49413)', () => {
  // The offloading connector stores a CPU chunk as one BlockStored of all its engine blocks and removes it with
  // its last block's hash only (vllm-project/vllm#49413; Dynamo expands them the same way, ai-dynamo/dynamo#11930).
  it('a removal naming only the chunk key releases every block of the chunk on that tier', () => {
    const t = setup();
    t.ingestor.applySync('a', 'm', [
      stored([1, 2, 3, 4], null, seq(64), 16),
      stored([1, 2, 3, 4], null, seq(64), 16, { medium: 'CPU' }),
    ]);
    expect(t.index.endpointEntriesSync('a')).toEqual({ GPU: 4, CPU: 4 });
    t.ingestor.applySync('a', 'm', [removed([4], 'CPU')]);
    expect(t.index.endpointEntriesSync('a')).toEqual({ GPU: 4 });
    expect(t.ingestor.counters.keyOnlyRemovals).toBe(1);
    expect(t.ingestor.counters.removedUnknown).toBe(0);
    expect(t.ingestor.counters.blocksRemoved).toBe(4);
  });

  it('a block-wise removal of a chunk is applied as it is; placeholder stores (older offload shape) are not chunks', () => {
    const t = setup();
    const cpu = { medium: 'CPU' };
    t.ingestor.applySync('a', 'm', [
      stored([1, 2, 3, 4], null, seq(64), 16),
      stored([1, 2], null, seq(32), 16, cpu),
      stored([3, 4], 2, seq(32, 33), 16, cpu),
    ]);
    // Removing 3 and 4 together lists the chunk's other block: block-wise, no expansion, nothing counted unknown.
    t.ingestor.applySync('a', 'm', [removed([3, 4], 'CPU')]);
    expect(t.index.endpointEntriesSync('a')).toEqual({ GPU: 4, CPU: 2 });
    expect(t.ingestor.counters.keyOnlyRemovals).toBe(0);
    // Placeholders: their CPU LRU evicts block by block, so removing the last block removes only it.
    t.ingestor.applySync('a', 'm', [placeholder([3, 4], 'CPU'), removed([4], 'CPU')]);
    expect(t.index.endpointEntriesSync('a')).toEqual({ GPU: 4, CPU: 3 });
    expect(t.ingestor.counters.keyOnlyRemovals).toBe(0);
    expect(t.ingestor.counters.removedUnknown).toBe(0);
  });

  it('a chunk stored twice needs two key-only removals; a GPU removal never expands', () => {
    const t = setup();
    const cpu = stored([1, 2], null, seq(32), 16, { medium: 'CPU' });
    t.ingestor.applySync('a', 'm', [stored([1, 2], null, seq(32), 16), cpu, cpu]);
    t.ingestor.applySync('a', 'm', [removed([2], 'CPU')]);
    expect(t.index.endpointEntriesSync('a')).toEqual({ GPU: 2, CPU: 2 });
    t.ingestor.applySync('a', 'm', [removed([2], 'CPU')]);
    expect(t.index.endpointEntriesSync('a')).toEqual({ GPU: 2 });
    t.ingestor.applySync('a', 'm', [removed([2])]);
    expect(t.index.endpointEntriesSync('a')).toEqual({ GPU: 1 });
  });
});

describe('endpoint spec: max_blocks / ttl', () => {
  it('parses both forms; the bound needs the identity it applies to; bad values name the option', () => {
    expect(
      parseEndpointSpec('tcp://10.0.0.5:5557;endpoint=10.0.0.5:8000;max_blocks=100000;ttl=600').storeBound,
    ).toEqual({ maxBlocks: 100_000, ttlMs: 600_000 });
    expect(
      parseEndpointSpec({ address: 'tcp://10.0.0.5:5557', endpoint: '10.0.0.5:8000', ttlSeconds: 1.5 }).storeBound,
    ).toEqual({ maxBlocks: null, ttlMs: 1500 });
    // Re-validating a parsed spec keeps its bound.
    const parsed = parseEndpointSpec('tcp://10.0.0.5:5557;endpoint=10.0.0.5:8000;max_blocks=7');
    expect(parseEndpointSpec({ ...parsed })).toEqual(parsed);
    expect(parseEndpointSpec('tcp://10.0.0.5:5557')).not.toHaveProperty('storeBound');
    expect(() => parseEndpointSpec('tcp://10.0.0.5:5557;max_blocks=10')).toThrow(
      /max_blocks\/ttl need endpoint=<host>:<port>/,
    );
    expect(() => parseEndpointSpec('tcp://10.0.0.5:5557;endpoint=10.0.0.5:8000;max_blocks=0')).toThrow(
      /max_blocks must be an integer 1..1000000000, got 0/,
    );
    expect(() => parseEndpointSpec('tcp://10.0.0.5:5557;endpoint=10.0.0.5:8000;ttl=abc')).toThrow(EndpointSpecError);
  });
});

describe('ingest: saturated counts', () => {
  it('a store bound drops an engine block stored 300 times (its count saturated at 255)', () => {
    const t = setup();
    t.ingestor.setStoreBound('a', { maxBlocks: 1, ttlMs: null });
    const again = stored([1], null, seq(16), 16);
    t.ingestor.applySync(
      'a',
      'm',
      Array.from({ length: 300 }, () => again),
    );
    t.ingestor.applySync('a', 'm', [stored([2], 1, seq(16, 17), 16)]);
    expect(t.ingestor.engineKeyCount('a')).toBe(1);
    expect(t.heldBlocks('a', seq(32))).toEqual([0, 1]);
  });
});
