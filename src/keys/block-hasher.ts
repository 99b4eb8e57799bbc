import { CborWriter, encodeBlockExtra } from './cbor.js';
import { fnv64a } from './fnv.js';
import { FNV_CHAIN_WASM_BASE64 } from './fnv-chain.wasm.js';

/** Identifiers folded into one block's key, in order (multimodal items, then the cache salt on block 0). */
export type BlockExtra = readonly string[] | null;

export interface KeySchemeConfig {
  /** Tokens per canonical block (`B`). */
  blockSize: number;
  /** The indexer's own hash seed; part of the index fingerprint. */
  hashSeed: string;
}

/** What makes two indexes' keys comparable; replicas sharing one index must agree on all of it. */
export interface KeyFingerprint {
  scheme: 'cbor-fnv64a';
  blockSize: number;
  hashSeed: string;
}

interface ChainExports {
  memory: WebAssembly.Memory;
  chain(tok: number, n: number, bs: number, plo: number, phi: number, extras: number, out: number): void;
}

const MAX_BLOCK_SIZE = 1 << 16;
const PAGE = 65536;
let sharedModule: WebAssembly.Module | undefined;

function wasmModule(): WebAssembly.Module {
  sharedModule ??= new WebAssembly.Module(Buffer.from(FNV_CHAIN_WASM_BASE64, 'base64'));
  return sharedModule;
}

/**
 * llm-d compatible request keys (spec/block-keys.md):
 *   root(model) = fnv64a(cbor([fnv64a(utf8(hashSeed)), null, model]))
 *   key[i]      = fnv64a(cbor([key[i-1] or root, tokens of block i, extra[i]]))
 * Only full blocks get keys. The per-block work runs in a small WebAssembly loop with native 64-bit multiplies
 * (no buffer, no BigInt per block); BigInt appears only once per call, for the parent.
 */
/** Distinct one-identifier extras whose CBOR a hasher keeps (cleared when full). */
const MAX_CACHED_EXTRAS = 4096;

export class BlockHasher {
  readonly blockSize: number;
  readonly hashSeed: string;
  readonly seedHash: bigint;
  private readonly wasm: ChainExports;
  private u32: Uint32Array;
  private u8: Uint8Array;
  private u64: BigUint64Array;
  private readonly roots = new Map<string, bigint>();
  private readonly cbor = new CborWriter();
  /**
   * CBOR of one-identifier extras by identifier: a LoRA name or an image hash repeats on every block it covers, and
   * its UTF-8 encoding cost more than the rest of the block's hashing.
   */
  private readonly singleExtras = new Map<string, Uint8Array>();

  constructor(config: KeySchemeConfig) {
    if (!Number.isInteger(config.blockSize) || config.blockSize < 1 || config.blockSize > MAX_BLOCK_SIZE) {
      throw new RangeError(`blockSize must be an integer in [1, ${MAX_BLOCK_SIZE}], got ${config.blockSize}`);
    }
    this.blockSize = config.blockSize;
    this.hashSeed = config.hashSeed;
    this.seedHash = fnv64a(new TextEncoder().encode(config.hashSeed));
    const instance = new WebAssembly.Instance(wasmModule(), {});
    this.wasm = instance.exports as unknown as ChainExports;
    this.u32 = new Uint32Array(this.wasm.memory.buffer);
    this.u8 = new Uint8Array(this.wasm.memory.buffer);
    this.u64 = new BigUint64Array(this.wasm.memory.buffer);
  }

  get fingerprint(): KeyFingerprint {
    return { scheme: 'cbor-fnv64a', blockSize: this.blockSize, hashSeed: this.hashSeed };
  }

  /** The chain's starting parent for a model (or for a LoRA adapter: its name replaces the model). */
  rootKey(model: string): bigint {
    let root = this.roots.get(model);
    if (root === undefined) {
      root = fnv64a(this.cbor.reset().arrayHead(3).uint(this.seedHash).nil().text(model).bytes());
      if (this.roots.size >= 4096) this.roots.clear();
      this.roots.set(model, root);
    }
    return root;
  }

  /** Number of full blocks in `tokenCount` tokens. */
  fullBlocks(tokenCount: number): number {
    return Math.floor(tokenCount / this.blockSize);
  }

  /** Keys of every full block of `tokens` for `model`, starting at the model's root. */
  keysFor(
    model: string,
    tokens: Uint32Array | readonly number[],
    extras?: readonly BlockExtra[] | null,
  ): BigUint64Array {
    return this.chain(tokens, this.rootKey(model), extras);
  }

  /**
   * Keys of the full blocks of `tokens`, chained from `parent`. `extras[i]` (optional) lists block i's identifiers.
   * `out`, when given, must hold at least fullBlocks(tokens.length) keys and is returned (a view of it).
   */
  chain(
    tokens: Uint32Array | readonly number[],
    parent: bigint,
    extras?: readonly BlockExtra[] | null,
    out?: BigUint64Array,
  ): BigUint64Array {
    const n = Math.floor(tokens.length / this.blockSize);
    if (out && out.length < n) throw new RangeError(`out holds ${out.length} keys, ${n} needed`);
    const result = out ? (out.length === n ? out : out.subarray(0, n)) : new BigUint64Array(n);
    if (n === 0) return result;
    this.run(tokens, n, Number(parent & 0xffffffffn), Number((parent >> 32n) & 0xffffffffn), extras);
    result.set(this.u64.subarray(0, n));
    return result;
  }

  /**
   * Same as chain() for hot paths: the parent as uint32 halves in, the keys as halves [lo0, hi0, lo1, …] written
   * into `out` (which must hold 2 × fullBlocks(tokens.length) words). No bigint is created. Returns the key count.
   */
  chainHalves(
    tokens: Uint32Array,
    parentLo: number,
    parentHi: number,
    extras: readonly BlockExtra[] | null,
    out: Uint32Array,
  ): number {
    const n = Math.floor(tokens.length / this.blockSize);
    if (out.length < 2 * n) throw new RangeError(`out holds ${out.length / 2} keys, ${n} needed`);
    if (n === 0) return 0;
    this.run(tokens, n, parentLo, parentHi, extras);
    const u32 = this.u32;
    for (let i = 0; i < 2 * n; i++) out[i] = u32[i];
    return n;
  }

  private singleExtra(id: string): Uint8Array {
    let enc = this.singleExtras.get(id);
    if (enc === undefined) {
      enc = encodeBlockExtra([id], this.cbor);
      if (this.singleExtras.size >= MAX_CACHED_EXTRAS) this.singleExtras.clear();
      this.singleExtras.set(id, enc);
    }
    return enc;
  }

  /** Runs the WebAssembly chain over the first n full blocks; the keys are left at the start of its memory. */
  private run(
    tokens: Uint32Array | readonly number[],
    n: number,
    plo: number,
    phi: number,
    extras: readonly BlockExtra[] | null | undefined,
  ): void {
    const bs = this.blockSize;
    const tokenCount = n * bs;
    let extraBytes: Uint8Array[] | null = null;
    let extraTotal = 0;
    if (extras) {
      for (let i = 0; i < n && i < extras.length; i++) {
        const ids = extras[i];
        if (ids && ids.length > 0) {
          extraBytes ??= new Array<Uint8Array>(n);
          const enc = ids.length === 1 ? this.singleExtra(ids[0]) : encodeBlockExtra(ids, this.cbor);
          extraBytes[i] = enc;
          extraTotal += enc.length;
        }
      }
    }

    // Layout: [out: n×8][extras table: n×8][tokens: n×bs×4][extra bytes]
    const tablePtr = n * 8;
    const tokPtr = tablePtr + (extraBytes ? n * 8 : 0);
    const extraPtr = tokPtr + tokenCount * 4;
    this.ensureMemory(extraPtr + extraTotal);

    const u32 = this.u32;
    const tokBase = tokPtr >>> 2;
    if (tokens instanceof Uint32Array) {
      u32.set(tokens.length === tokenCount ? tokens : tokens.subarray(0, tokenCount), tokBase);
    } else {
      for (let i = 0; i < tokenCount; i++) {
        const t = tokens[i];
        if (!Number.isInteger(t) || t < 0 || t > 0xffffffff) throw new RangeError(`token ${i} is not a uint32: ${t}`);
        u32[tokBase + i] = t;
      }
    }
    if (extraBytes) {
      let p = extraPtr;
      for (let i = 0; i < n; i++) {
        const enc = extraBytes[i];
        u32[(tablePtr >>> 2) + i * 2] = p;
        u32[(tablePtr >>> 2) + i * 2 + 1] = enc ? enc.length : 0;
        if (enc) {
          this.u8.set(enc, p);
          p += enc.length;
        }
      }
    }
    this.wasm.chain(tokPtr, n, bs, plo, phi, extraBytes ? tablePtr : 0, 0);
  }

  private ensureMemory(bytes: number): void {
    const mem = this.wasm.memory;
    if (bytes <= mem.buffer.byteLength) return;
    mem.grow(Math.ceil((bytes - mem.buffer.byteLength) / PAGE));
    this.u32 = new Uint32Array(mem.buffer);
    this.u8 = new Uint8Array(mem.buffer);
    this.u64 = new BigUint64Array(mem.buffer);
  }
}
