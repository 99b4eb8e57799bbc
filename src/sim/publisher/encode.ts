import { encode } from '@msgpack/msgpack';

/** Wire options of one simulated publisher (spec/vllm-kv-events.md §2). */
export interface WireStyle {
  /** `array`: vLLM ≤ 0.22 positional events; `map`: vLLM ≥ 0.23 tagged maps (defaults omitted). */
  encoding: 'array' | 'map';
  /** `int`: uint64 hashes; `bytes`: 32-byte hashes (VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES=0). */
  hashes: 'int' | 'bytes';
}

export type SimEvent =
  | {
      type: 'BlockStored';
      hashes: Uint8Array[];
      parent: Uint8Array | null;
      tokens: number[];
      blockSize: number;
      medium: string | null;
      loraName: string | null;
      extraKeys: ((string | [string, number])[] | null)[] | null;
    }
  | { type: 'BlockRemoved'; hashes: Uint8Array[]; medium: string | null }
  | { type: 'AllBlocksCleared' };

function wireHash(hash: Uint8Array, style: WireStyle): bigint | Uint8Array {
  return style.hashes === 'bytes' ? hash : Buffer.from(hash).readBigUInt64BE(hash.length - 8);
}

function wireEvent(ev: SimEvent, style: WireStyle): unknown {
  const h = (x: Uint8Array) => wireHash(x, style);
  if (style.encoding === 'array') {
    switch (ev.type) {
      case 'BlockStored':
        // [tag, block_hashes, parent, token_ids, block_size, lora_id, medium, lora_name, extra_keys]
        return [
          'BlockStored',
          ev.hashes.map(h),
          ev.parent === null ? null : h(ev.parent),
          ev.tokens,
          ev.blockSize,
          null,
          ev.medium,
          ev.loraName,
          ev.extraKeys,
        ];
      case 'BlockRemoved':
        return ['BlockRemoved', ev.hashes.map(h), ev.medium];
      case 'AllBlocksCleared':
        return ['AllBlocksCleared'];
    }
  }
  switch (ev.type) {
    case 'BlockStored': {
      const m: Record<string, unknown> = {
        type: 'BlockStored',
        block_hashes: ev.hashes.map(h),
        parent_block_hash: ev.parent === null ? null : h(ev.parent),
        token_ids: ev.tokens,
        block_size: ev.blockSize,
        lora_id: null,
      };
      if (ev.medium !== null) m.medium = ev.medium;
      if (ev.loraName !== null) m.lora_name = ev.loraName;
      if (ev.extraKeys !== null) m.extra_keys = ev.extraKeys;
      return m;
    }
    case 'BlockRemoved': {
      const m: Record<string, unknown> = { type: 'BlockRemoved', block_hashes: ev.hashes.map(h) };
      if (ev.medium !== null) m.medium = ev.medium;
      return m;
    }
    case 'AllBlocksCleared':
      return { type: 'AllBlocksCleared' };
  }
}

/** A batch as vLLM's msgspec writes it: `[ts, events, data_parallel_rank]`. */
export function encodeBatch(
  ts: number,
  events: readonly SimEvent[],
  rank: number | null,
  style: WireStyle,
): Uint8Array {
  return encode([ts, events.map((e) => wireEvent(e, style)), rank], { useBigInt64: true });
}
