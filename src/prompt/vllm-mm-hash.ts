import { createHash } from 'node:crypto';
import { createBLAKE3 } from 'hash-wasm';
import { PromptError } from './errors.js';
import type { VllmEntry } from './model-config.js';
import { mmHashChunks, type HashedImage, type StreamScheme } from './vllm-mm-stream.js';
import type { KwargValue } from './py-value.js';

/**
 * vLLM's image identifier (`mm_hash`) for one model entry's configured engine (spec/vllm-mm-hash.md): the version
 * picks the byte stream and the uuid rule; the digest runs in slices that yield to the event loop, so a 20 MB image
 * does not stall other requests.
 */

export type MmHasher = 'blake3' | 'sha256' | 'sha512';

/** A registry entry's `vllm` block, checked and resolved. */
export interface VllmHashConfig {
  version: string;
  scheme: StreamScheme;
  /** 0.13.x: None kwargs carry pickle bytes. */
  noneAsPickle: boolean;
  modelId: string;
  hasher: MmHasher;
  towerConnectorLora: boolean;
  /** v0.16 only: the engine's max_model_len (the hash includes max_length derived from it). */
  maxModelLen: number | null;
  /** ≥ 0.27: the target mode ('RGB') or null (conversion disabled: no io_config ever). */
  imageMode: 'RGB' | null;
  rgbaBackgroundColor: readonly number[];
}

export const OLDEST_SUPPORTED_VLLM = '0.13.0';

/** Resolves a registry entry's `vllm` block; every problem is a start-up error naming the key. */
export function resolveVllmConfig(entry: VllmEntry, servedName: string, where: string): VllmHashConfig {
  const key = `${where}.vllm`;
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(entry.version);
  if (!m)
    throw new PromptError(
      'failed_precondition',
      `unknown vLLM version ${JSON.stringify(entry.version)} (expected X.Y.Z, e.g. "0.19.1")`,
      `${key}.version`,
    );
  const [major, minor] = [Number(m[1]), Number(m[2])];
  const at = (maj: number, min: number): boolean => major > maj || (major === maj && minor >= min);
  if (!at(0, 13)) {
    throw new PromptError(
      'failed_precondition',
      `vLLM ${entry.version} hashed decoded pixels, which is not reproduced; the oldest supported version is ${OLDEST_SUPPORTED_VLLM}`,
      `${key}.version`,
    );
  }
  const scheme: StreamScheme = at(0, 27) ? 'v0.27' : at(0, 17) ? 'v0.17' : at(0, 16) ? 'v0.16' : 'v0.13';
  const hasher = entry.mmHasher;
  // VLLM_MM_HASHER_ALGORITHM appeared in 0.15; before it the hash is always blake3.
  if (hasher !== 'blake3' && !at(0, 15)) {
    throw new PromptError(
      'failed_precondition',
      `vLLM ${entry.version} always hashes with blake3 (the algorithm became configurable in 0.15)`,
      `${key}.mmHasher`,
    );
  }
  if (entry.towerConnectorLora && !at(0, 14)) {
    throw new PromptError(
      'failed_precondition',
      `--enable-tower-connector-lora exists from vLLM 0.14.0`,
      `${key}.towerConnectorLora`,
    );
  }
  if (scheme === 'v0.16' && entry.maxModelLen === undefined) {
    throw new PromptError(
      'failed_precondition',
      `vLLM 0.16 hashes images with the engine's max_model_len: set it`,
      `${key}.maxModelLen`,
    );
  }
  return {
    version: entry.version,
    scheme,
    noneAsPickle: !at(0, 14),
    modelId: entry.model ?? servedName,
    hasher,
    towerConnectorLora: entry.towerConnectorLora,
    maxModelLen: entry.maxModelLen ?? null,
    imageMode: entry.imageMode,
    rgbaBackgroundColor: entry.rgbaBackgroundColor,
  };
}

/** Bytes hashed between two yields to the event loop (≈1 ms with hash-wasm's BLAKE3). */
export const HASH_SLICE_BYTES = 1 << 20;

interface Digest {
  update(data: Uint8Array): void;
  hex(): string;
}

async function newDigest(algorithm: MmHasher): Promise<Digest> {
  if (algorithm === 'blake3') {
    const h = await createBLAKE3();
    h.init();
    return { update: (d) => void h.update(d), hex: () => h.digest('hex') };
  }
  const h = createHash(algorithm);
  return { update: (d) => void h.update(d), hex: () => h.digest('hex') };
}

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Hex digest of the chunks' concatenation, yielding to the event loop after every HASH_SLICE_BYTES. */
export async function digestChunks(
  algorithm: MmHasher,
  chunks: readonly Uint8Array[],
  sliceBytes = HASH_SLICE_BYTES,
): Promise<string> {
  const digest = await newDigest(algorithm);
  let sinceYield = 0;
  for (const chunk of chunks) {
    for (let at = 0; at < chunk.length; at += sliceBytes) {
      const part = chunk.subarray(at, Math.min(chunk.length, at + sliceBytes));
      digest.update(part);
      sinceYield += part.length;
      if (sinceYield >= sliceBytes) {
        sinceYield = 0;
        await yieldToLoop();
      }
    }
  }
  return digest.hex();
}

export interface IdentifierRequest {
  image: { kind: 'bytes'; bytes: Uint8Array; decodesAsRgb: boolean } | { kind: 'uuid'; uuid: string };
  kwargs: readonly (readonly [string, KwargValue])[];
  /** v0.16: the request's add_special_tokens (chat default false) and max_tokens / max_completion_tokens. */
  addSpecialTokens: boolean;
  maxTokens: number | null;
  lora: string | null;
}

/**
 * vLLM's identifier for one image: the uuid verbatim where the version keeps it, else the digest of the version's
 * stream; with tower-connector LoRA, `<lora>:` in front (v1/engine/input_processor.py).
 */
export async function vllmIdentifier(cfg: VllmHashConfig, req: IdentifierRequest): Promise<string> {
  let base: string;
  // 0.17+: a uuid is used verbatim unless the request has mm_processor_kwargs; 0.13–0.16 always hash it, because
  // the chat server's tokenization kwargs are never empty (spec/vllm-mm-hash.md §4, "uuid given").
  if (req.image.kind === 'uuid' && (cfg.scheme === 'v0.17' || cfg.scheme === 'v0.27') && req.kwargs.length === 0) {
    base = req.image.uuid;
  } else {
    const image: HashedImage =
      req.image.kind === 'uuid'
        ? req.image
        : {
            kind: 'bytes',
            bytes: req.image.bytes,
            ioConfig:
              cfg.scheme === 'v0.27' && cfg.imageMode !== null && !req.image.decodesAsRgb
                ? { imageMode: cfg.imageMode, rgbaBackgroundColor: cfg.rgbaBackgroundColor }
                : null,
          };
    const tokenization =
      cfg.scheme === 'v0.16'
        ? { addSpecialTokens: req.addSpecialTokens, maxLength: maxLength016(cfg.maxModelLen!, req.maxTokens) }
        : undefined;
    base = await digestChunks(
      cfg.hasher,
      mmHashChunks({
        scheme: cfg.scheme,
        noneAsPickle: cfg.noneAsPickle,
        modelId: cfg.modelId,
        image,
        kwargs: req.kwargs,
        tokenization,
      }),
    );
  }
  return cfg.towerConnectorLora && req.lora !== null ? `${req.lora}:${base}` : base;
}

/**
 * 0.16's `TokenizeParams.get_encode_kwargs()` for a chat request without truncate_prompt_tokens: max_input =
 * max_model_len − (max_completion_tokens or max_tokens or 0), and max_length = max_input + 1.
 */
function maxLength016(maxModelLen: number, maxTokens: number | null): number {
  return maxModelLen - (maxTokens ?? 0) + 1;
}
