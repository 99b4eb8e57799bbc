import { describe, expect, it } from 'vitest';
import { imageIdentifiers } from '../../../src/events/ingest/extra-features.js';
import { Ingestor } from '../../../src/events/ingest/index.js';
import type { ExtraKeyItem } from '../../../src/events/types.js';
import { EncoderResidency, MemoryIndex, TierRegistry } from '../../../src/index/index.js';
import { BlockHasher } from '../../../src/keys/index.js';
import { mm, seq, stored, str } from '../../support/events.js';

const MODEL = 'Qwen/Qwen2-VL-2B-Instruct';
const A = '10.0.0.1:8000';
const B = '10.0.0.2:8000';
const loraId = (id: number): ExtraKeyItem => ({ kind: 'lora-id', id });
const embeds = (hex: string): ExtraKeyItem => ({ kind: 'embeds', hex });

function setup() {
  const tiers = new TierRegistry();
  const index = new MemoryIndex({ tiers, shards: 4 });
  const residency = new EncoderResidency({ cacheEntries: 16, ttlMs: 0 });
  const ingestor = new Ingestor({
    hasher: new BlockHasher({ blockSize: 16, hashSeed: '' }),
    writer: index,
    tiers,
    residency,
  });
  return { index, residency, ingestor };
}

describe('imageIdentifiers: the images of an event extra_keys', () => {
  it('takes [id, offset] items once each, in wire order', () => {
    expect(imageIdentifiers([[mm('img1', 4)], [mm('img1', -12), mm('img2', 9)], null], null, true)).toEqual([
      'img1',
      'img2',
    ]);
  });

  it('leaves out the LoRA name, int LoRA ids, prompt-embeds bytes and the cache salt', () => {
    const keys = [
      [str('sql'), loraId(3), embeds('00ff'), mm('img1', 4), str('tenant-salt')],
      [str('sql'), mm('img1', -12)],
    ];
    expect(imageIdentifiers(keys, 'sql', true)).toEqual(['img1']);
    // Not a chain start: block 0's trailing bare string is not a salt but a (≤ 0.18) identifier.
    expect(imageIdentifiers(keys, 'sql', false)).toEqual(['img1', 'tenant-salt']);
  });

  it('takes vLLM ≤ 0.18 bare string identifiers, also the last one of block 0 when the next block repeats it', () => {
    expect(imageIdentifiers([[str('old-a')], [str('old-a'), str('old-b')]], null, true)).toEqual(['old-a', 'old-b']);
    expect(imageIdentifiers([[str('old-a'), str('old-c')], null], null, false)).toEqual(['old-a', 'old-c']);
  });
});

describe('ingest feeds encoder residency', () => {
  it('records the images of stored blocks per endpoint, and AllBlocksCleared, clear and forget drop them', () => {
    const t = setup();
    const keys = [[mm('img-1', 4)], [mm('img-1', -12), mm('img-2', 10)]];
    t.ingestor.applySync(A, MODEL, [stored([1, 2], null, seq(32), 16, { extraKeys: keys })]);
    t.ingestor.applySync(B, MODEL, [stored([7], null, seq(16), 16, { extraKeys: [[mm('img-2', 3)]] })]);
    expect(t.residency.endpointsOf('img-1')).toEqual([A]);
    expect(t.residency.endpointsOf('img-2')).toEqual([B, A]);
    expect(t.index.entriesOf(A)).toBe(2);

    t.ingestor.applySync(B, MODEL, [{ type: 'AllBlocksCleared' }]);
    expect(t.residency.endpointsOf('img-2')).toEqual([A]);
    t.ingestor.clear(A);
    expect(t.residency.entries).toBe(0);

    t.ingestor.applySync(A, MODEL, [stored([1], null, seq(16), 16, { extraKeys: [[mm('img-3', 0)]] })]);
    t.ingestor.forget(A);
    expect(t.residency.endpointsOf('img-3')).toEqual([]);
    t.ingestor.applySync(A, MODEL, [stored([1], null, seq(16), 16, { extraKeys: [[mm('img-4', 0)]] })]);
    t.ingestor.handOver(A);
    expect(t.residency.endpointsOf('img-4')).toEqual([]);
    expect(t.residency.evictions).toEqual({ lru: 0, ttl: 0, endpoint_cleared: 5 });
  });

  it('records images even when the blocks themselves are not indexed (unknown parent), and re-stores touch them', () => {
    const t = setup();
    t.ingestor.applySync(A, MODEL, [stored([5], 999, seq(16), 16, { extraKeys: [[mm('img-9', 0)]] })]);
    expect(t.ingestor.counters.parentUnknown).toBe(1);
    expect(t.residency.endpointsOf('img-9')).toEqual([A]);
    t.ingestor.applySync(B, MODEL, [stored([1], null, seq(16), 16, { extraKeys: [[mm('img-9', 0)]] })]);
    expect(t.residency.endpointsOf('img-9')).toEqual([B, A]);
    // A stores it again (same engine key, already known): A is the most recent holder again.
    t.ingestor.applySync(A, MODEL, [stored([5], 999, seq(16), 16, { extraKeys: [[mm('img-9', 0)]] })]);
    expect(t.residency.endpointsOf('img-9')).toEqual([A, B]);
  });

  it('an event without extra_keys records nothing', () => {
    const t = setup();
    t.ingestor.applySync(A, MODEL, [stored([1, 2], null, seq(32), 16)]);
    expect(t.residency.entries).toBe(0);
    expect(t.residency.endpointCount).toBe(0);
  });
});
