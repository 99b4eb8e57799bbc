import { createHash } from 'node:crypto';

/** One block's extra keys as vLLM publishes them: LoRA name, then `[identifier, offset]` per overlapping item. */
export type SimExtraKey = string | [string, number];

/**
 * The simulator's engine block hash: sha256 over (parent hash, tokens, extra keys), like vLLM's `sha256_cbor` chain
 * (the bytes differ — engine keys are opaque to the indexer, only their identity and chaining matter). The int
 * form is the last 8 bytes big-endian, so that both wire forms of one block normalise to the same uint64.
 */
export function engineBlockHash(
  parent: Uint8Array | null,
  tokens: ArrayLike<number>,
  extra: readonly SimExtraKey[] | null,
): Uint8Array {
  const h = createHash('sha256');
  h.update(parent ?? Buffer.alloc(32));
  const t = Buffer.alloc(tokens.length * 4);
  for (let i = 0; i < tokens.length; i++) t.writeUInt32LE(tokens[i], i * 4);
  h.update(t);
  if (extra && extra.length > 0) h.update(JSON.stringify(extra));
  return h.digest();
}

export function hashToUint64(hash: Uint8Array): bigint {
  return Buffer.from(hash).readBigUInt64BE(hash.length - 8);
}
