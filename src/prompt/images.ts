import { createHash } from 'node:crypto';
import { invalid, PromptError } from './errors.js';
import type { ImageKwargs } from './image-rules.js';
import type { FetchOutcome, ImageFetcher, PendingFetches } from './image-fetch.js';
import { decodesAsRgb } from './image-mode.js';
import { decodeDataUrl, probeImageSize, type ImageSize } from './image-probe.js';
import { MAX_ASPECT_RATIO } from './image-tokens.js';
import type { ImagePartRef } from './messages.js';
import type { KwargValue } from './py-value.js';
import type { LoadedModel } from './registry.js';
import { vllmIdentifier } from './vllm-mm-hash.js';

/** Where an item's identifier came from (reported per item and counted). */
export type IdentifierSource = 'uuid' | 'caller' | 'vllm-mm-hash' | 'content-hash';

/** An image ready for expansion: its size, how many placeholder tokens it becomes, and its identifier. */
export interface ResolvedImage {
  field: string;
  width: number | null;
  height: number | null;
  /** True when the size is the model's configured default, not the image's own (http URL without width/height). */
  estimated: boolean;
  tokens: number;
  identifier: string;
  identifierSource: IdentifierSource;
  /** http(s) images: fetched, served from the fetch cache, or why not fetched; null for data URLs. */
  fetchOutcome: FetchOutcome | null;
}

/** What resolving a request's images needs besides the part itself. */
export interface ImageContext {
  model: LoadedModel;
  /** Processor kwargs that change token counts. */
  kwargs: ImageKwargs | undefined;
  /** The request's mm_processor_kwargs as vLLM hashes them (request order, Python types). */
  hashKwargs: readonly (readonly [string, KwargValue])[];
  /** node:crypto algorithm of the content hash used when no vLLM engine is configured. */
  contentHash: string;
  fetcher: ImageFetcher;
  pendingFetches: PendingFetches;
  lora: string | null;
  addSpecialTokens: boolean;
  maxTokens: number | null;
}

/**
 * Size and identifier of one image part (spec/multimodal.md §3–4, spec/vllm-mm-hash.md). Data URLs are decoded;
 * http(s) URLs are fetched when `images.fetch` allows it, and then treated exactly as data URLs. An unfetched URL
 * takes caller-supplied width/height, else the configured default size (estimated), and a content hash of its text.
 */
export async function resolveImage(ref: ImagePartRef, ctx: ImageContext): Promise<ResolvedImage> {
  const { model } = ctx;
  const rule = model.imageRule;
  if (!rule) {
    throw invalid(ref.field, `model "${model.name}" has no image rule (configure image.strategy for it)`);
  }
  let width = ref.width;
  let height = ref.height;
  let estimated = false;
  let bytes: Uint8Array | null = null;
  let size: ImageSize | null = null;
  let fetchOutcome: FetchOutcome | null = null;
  if (ref.url.startsWith('data:')) {
    bytes = decodeDataUrl(ref.url, ref.field, model.limits.maxImageBytes).bytes;
    size = probeImageSize(bytes, ref.field);
  } else if (/^https?:\/\//i.test(ref.url)) {
    if ((width === null) !== (height === null)) throw invalid(ref.field, 'give both width and height, or neither');
    const fetched = await ctx.fetcher.fetch(ref.url, ctx.pendingFetches);
    fetchOutcome = fetched.outcome;
    if (fetched.ok) {
      try {
        size = probeImageSize(fetched.bytes, ref.field);
        bytes = fetched.bytes;
      } catch {
        // vLLM would fail to open it too; routing falls back to an estimate rather than refusing the request.
        fetchOutcome = 'bad-image';
        const at = ctx.pendingFetches.findIndex(([u]) => u === ref.url);
        if (at >= 0) ctx.pendingFetches.splice(at, 1);
      }
    }
    if (bytes === null && width === null && rule.needsSize) {
      if (!rule.defaultSize) {
        throw invalid(
          ref.field,
          `http image without width/height, and model "${model.name}" has no default image size`,
        );
      }
      width = rule.defaultSize.width;
      height = rule.defaultSize.height;
      estimated = true;
    }
  } else {
    throw invalid(ref.field, 'image url must be a data: URL or an http(s) URL');
  }
  if (size) {
    width = size.width;
    height = size.height;
  }
  if (width !== null && height !== null) checkDimensions(width, height, model, ref.field);
  const tokens = rule.needsSize
    ? rule.count(width!, height!, ctx.kwargs, ref.field)
    : rule.count(0, 0, ctx.kwargs, ref.field);
  const { identifier, identifierSource } = await identify(ref, ctx, bytes, size);
  return { field: ref.field, width, height, estimated, tokens, identifier, identifierSource, fetchOutcome };
}

async function identify(
  ref: ImagePartRef,
  ctx: ImageContext,
  bytes: Uint8Array | null,
  size: ImageSize | null,
): Promise<{ identifier: string; identifierSource: IdentifierSource }> {
  const vllm = ctx.model.vllm;
  const request = {
    kwargs: ctx.hashKwargs,
    lora: ctx.lora,
    addSpecialTokens: ctx.addSpecialTokens,
    maxTokens: ctx.maxTokens,
  };
  if (ref.uuid !== null) {
    const identifier = vllm
      ? await vllmIdentifier(vllm, { ...request, image: { kind: 'uuid', uuid: ref.uuid } })
      : ref.uuid;
    return { identifier, identifierSource: 'uuid' };
  }
  if (ref.identifier !== null) return { identifier: ref.identifier, identifierSource: 'caller' };
  if (vllm && bytes !== null && size !== null) {
    const image = { kind: 'bytes' as const, bytes, decodesAsRgb: decodesAsRgb(size.format, bytes) };
    return { identifier: await vllmIdentifier(vllm, { ...request, image }), identifierSource: 'vllm-mm-hash' };
  }
  // Without the bytes, the URL itself stands for the image in the content hash.
  const input = bytes ?? Buffer.from(ref.url, 'utf8');
  return { identifier: createHash(ctx.contentHash).update(input).digest('hex'), identifierSource: 'content-hash' };
}

function checkDimensions(width: number, height: number, model: LoadedModel, field: string): void {
  const { maxImageSide, maxImagePixels } = model.limits;
  if (width <= 0 || height <= 0) throw invalid(field, `image has a zero dimension (${width}×${height})`);
  if (width > maxImageSide || height > maxImageSide)
    throw invalid(field, `image ${width}×${height} exceeds ${maxImageSide} pixels per side`);
  if (width * height > maxImagePixels)
    throw invalid(field, `image ${width}×${height} exceeds ${maxImagePixels} pixels`);
  if (Math.max(width, height) / Math.min(width, height) > MAX_ASPECT_RATIO) {
    throw invalid(field, `image aspect ratio ${width}×${height} is more than ${MAX_ASPECT_RATIO}`);
  }
}

export function checkHashAlgorithm(name: string): void {
  try {
    createHash(name);
  } catch {
    throw new PromptError('failed_precondition', `unknown identifier hash algorithm "${name}"`, 'identifierHash');
  }
}
