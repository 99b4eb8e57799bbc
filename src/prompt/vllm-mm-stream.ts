import type { KwargValue } from './py-value.js';

/**
 * vLLM's multimodal identifier byte streams (spec/vllm-mm-hash.md §3–4), per version range. vLLM's
 * `MultiModalHasher.hash_kwargs` (vllm/multimodal/hasher.py) flattens every keyword argument into chunks with
 * `iter_item_to_bytes` and feeds them to one hasher; only the concatenation matters. Pure functions: the chunks
 * are hashed elsewhere (vllm-mm-hash.ts).
 */

/** Which byte stream a vLLM version uses. */
export type StreamScheme =
  /** 0.13.0–0.15.x: insertion order model_id, image, request kwargs, then `truncation=False`. */
  | 'v0.13'
  /** 0.16.x: sorted by key, with the chat server's tokenization kwargs (add_special_tokens, max_length, truncation). */
  | 'v0.16'
  /** 0.17.0–0.26.x: sorted by key, no tokenization kwargs. */
  | 'v0.17'
  /** ≥ 0.27.0 (main from 2026-07-29, #49975): as v0.17 plus `io_config` for images whose decoded mode is converted. */
  | 'v0.27';

/** What stands for the image in the stream. */
export type HashedImage =
  | { kind: 'bytes'; bytes: Uint8Array; ioConfig: IoConfig | null }
  /** A content-part uuid that the version hashes instead of using verbatim. */
  | { kind: 'uuid'; uuid: string };

/** ≥ 0.27: the conversion vLLM applied when decoding (`MediaWithBytes.io_config`). */
export interface IoConfig {
  imageMode: string;
  rgbaBackgroundColor: readonly number[];
}

export interface StreamInput {
  scheme: StreamScheme;
  /** The engine's `--model` string (ModelConfig.model). */
  modelId: string;
  image: HashedImage;
  /** The request's `mm_processor_kwargs`, in request order (Python typing). */
  kwargs: readonly (readonly [string, KwargValue])[];
  /** vLLM 0.13.x (before #32025, 0.14.0): a None kwarg is its key plus pickle.dumps(None); later the key alone. */
  noneAsPickle?: boolean;
  /** v0.16 only: the chat server's tokenization kwargs. */
  tokenization?: { addSpecialTokens: boolean; maxLength: number };
}

const utf8 = (s: string): Uint8Array => Buffer.from(s, 'utf8');

function int64(v: bigint): Uint8Array {
  const b = Buffer.alloc(8);
  b.writeBigInt64LE(v);
  return b;
}

function float64(v: number): Uint8Array {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(v);
  return b;
}

/** `pickle.dumps(None)` (protocol 4): what vLLM < 0.14 appended to a None kwarg's key. */
const PICKLED_NONE = Uint8Array.of(0x80, 0x04, 0x4e, 0x2e);

/** `iter_item_to_bytes(key, value)` for a JSON-typed value. `noneAsPickle`: vLLM 0.13 (before #32025). */
function flatten(key: string, value: KwargValue, out: Uint8Array[], noneAsPickle: boolean): void {
  switch (value.t) {
    case 'str':
      out.push(utf8(key), utf8(value.v));
      return;
    case 'int':
      out.push(utf8(key), int64(value.v));
      return;
    case 'bool':
      out.push(utf8(key), Uint8Array.of(value.v ? 1 : 0));
      return;
    case 'float':
      out.push(utf8(key), float64(value.v));
      return;
    case 'none':
      out.push(utf8(key));
      if (noneAsPickle) out.push(PICKLED_NONE);
      return;
    case 'list':
      value.v.forEach((item, i) => flatten(`${key}.${i}`, item, out, noneAsPickle));
      return;
    case 'dict':
      for (const [k, item] of value.v) flatten(`${key}.${k}`, item, out, noneAsPickle);
      return;
  }
}

function flattenImage(image: HashedImage, out: Uint8Array[]): void {
  if (image.kind === 'uuid') {
    out.push(utf8('image'), utf8(image.uuid));
    return;
  }
  // MediaWithBytes: the key, then iter_item_to_bytes(key, original_bytes) → key again, then the bytes. With an
  // io_config (≥ 0.27) the second part is the dict {io_config: {...}, data: bytes} under the key.
  out.push(utf8('image'));
  if (image.ioConfig === null) {
    out.push(utf8('image'), image.bytes);
    return;
  }
  out.push(utf8('image.io_config.image_mode'), utf8(image.ioConfig.imageMode));
  image.ioConfig.rgbaBackgroundColor.forEach((c, i) =>
    out.push(utf8(`image.io_config.rgba_background_color.${i}`), int64(BigInt(c))),
  );
  out.push(utf8('image.data'), image.bytes);
}

/** Python's `sorted()` on str keys: by code point (JS's default sort compares UTF-16 units). */
function byCodePoint(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0)! - y[i].codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

type Entry = { key: string; emit: (out: Uint8Array[]) => void };

/** The chunks vLLM hashes for one image item (concatenate them for the digest input). */
export function mmHashChunks(input: StreamInput): Uint8Array[] {
  const noneAsPickle = input.noneAsPickle === true;
  const entries: Entry[] = [
    { key: 'model_id', emit: (out) => out.push(utf8('model_id'), utf8(input.modelId)) },
    { key: 'image', emit: (out) => flattenImage(input.image, out) },
    ...input.kwargs.map(([key, value]): Entry => ({ key, emit: (out) => flatten(key, value, out, noneAsPickle) })),
  ];
  if (input.scheme === 'v0.13') {
    entries.push({ key: 'truncation', emit: (out) => flatten('truncation', { t: 'bool', v: false }, out, true) });
  } else if (input.scheme === 'v0.16') {
    const tok = input.tokenization;
    if (!tok) throw new Error('vLLM 0.16 stream needs the tokenization kwargs');
    entries.push(
      {
        key: 'add_special_tokens',
        emit: (out) => flatten('add_special_tokens', { t: 'bool', v: tok.addSpecialTokens }, out, false),
      },
      { key: 'max_length', emit: (out) => flatten('max_length', { t: 'int', v: BigInt(tok.maxLength) }, out, false) },
      { key: 'truncation', emit: (out) => flatten('truncation', { t: 'bool', v: true }, out, false) },
    );
  }
  // From 0.16.0 (#33817) hash_kwargs iterates the kwargs sorted by key; before, in insertion order.
  if (input.scheme !== 'v0.13') entries.sort((a, b) => byCodePoint(a.key, b.key));
  const out: Uint8Array[] = [];
  for (const e of entries) e.emit(out);
  return out;
}
