import { CborWriter, encodeBlockExtra } from '../../../src/keys/cbor.js';
import { fnv64a } from '../../../src/keys/fnv.js';

/** Straightforward BigInt implementation of the request-key scheme: builds each block's CBOR and hashes it. */
export function referenceKeys(
  model: string,
  hashSeed: string,
  blockSize: number,
  tokens: readonly number[],
  extras: readonly (readonly string[] | null)[] | null,
): { root: bigint; keys: bigint[] } {
  const w = new CborWriter();
  const seed = fnv64a(new TextEncoder().encode(hashSeed));
  const root = fnv64a(w.reset().arrayHead(3).uint(seed).nil().text(model).bytes());
  const keys: bigint[] = [];
  let parent = root;
  for (let b = 0; (b + 1) * blockSize <= tokens.length; b++) {
    w.reset().arrayHead(3).uint(parent).arrayHead(blockSize);
    for (let i = b * blockSize; i < (b + 1) * blockSize; i++) w.uint(tokens[i]);
    const head = w.bytes().slice();
    const extra = encodeBlockExtra(extras?.[b] ?? null);
    const all = new Uint8Array(head.length + extra.length);
    all.set(head);
    all.set(extra, head.length);
    parent = fnv64a(all);
    keys.push(parent);
  }
  return { root, keys };
}
