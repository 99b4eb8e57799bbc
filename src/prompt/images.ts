import { createHash } from 'node:crypto';
import { invalid, PromptError } from './errors.js';
import type { ImageKwargs } from './image-rules.js';
import { decodeDataUrl, probeImageSize } from './image-probe.js';
import { MAX_ASPECT_RATIO } from './image-tokens.js';
import type { ImagePartRef } from './messages.js';
import type { LoadedModel } from './registry.js';

/** An image ready for expansion: its size, how many placeholder tokens it becomes, and its identifier. */
export interface ResolvedImage {
  field: string;
  width: number | null;
  height: number | null;
  /** True when the size is the model's configured default, not the image's own (http URL without width/height). */
  estimated: boolean;
  tokens: number;
  identifier: string;
  identifierSource: 'uuid' | 'identifier' | 'content-hash';
}

/**
 * Size and identifier of one image part (spec/multimodal.md §3–4). Data URLs are decoded and their header probed;
 * http(s) URLs are never fetched: caller-supplied width/height, else the configured default (estimated).
 */
export function resolveImage(
  ref: ImagePartRef,
  model: LoadedModel,
  kwargs: ImageKwargs | undefined,
  hashAlgorithm: string,
): ResolvedImage {
  const rule = model.imageRule;
  if (!rule) {
    throw invalid(ref.field, `model "${model.name}" has no image rule (configure image.strategy for it)`);
  }
  let width = ref.width;
  let height = ref.height;
  let estimated = false;
  let hashInput: Uint8Array;
  if (ref.url.startsWith('data:')) {
    const { bytes } = decodeDataUrl(ref.url, ref.field, model.limits.maxImageBytes);
    const size = probeImageSize(bytes, ref.field);
    width = size.width;
    height = size.height;
    hashInput = bytes;
  } else if (/^https?:\/\//i.test(ref.url)) {
    // Without the bytes, the URL itself stands for the image in the content hash.
    hashInput = Buffer.from(ref.url, 'utf8');
    if ((width === null) !== (height === null)) throw invalid(ref.field, 'give both width and height, or neither');
    if (width === null && rule.needsSize) {
      if (!rule.defaultSize) {
        throw invalid(ref.field, `http image without width/height, and model "${model.name}" has no default image size`);
      }
      width = rule.defaultSize.width;
      height = rule.defaultSize.height;
      estimated = true;
    }
  } else {
    throw invalid(ref.field, 'image url must be a data: URL or an http(s) URL');
  }
  if (width !== null && height !== null) checkDimensions(width, height, model, ref.field);
  const tokens = rule.needsSize ? rule.count(width!, height!, kwargs, ref.field) : rule.count(0, 0, kwargs, ref.field);
  let identifier: string;
  let identifierSource: ResolvedImage['identifierSource'];
  if (ref.uuid !== null) {
    identifier = ref.uuid;
    identifierSource = 'uuid';
  } else if (ref.identifier !== null) {
    identifier = ref.identifier;
    identifierSource = 'identifier';
  } else {
    identifier = createHash(hashAlgorithm).update(hashInput).digest('hex');
    identifierSource = 'content-hash';
  }
  return { field: ref.field, width, height, estimated, tokens, identifier, identifierSource };
}

function checkDimensions(width: number, height: number, model: LoadedModel, field: string): void {
  const { maxImageSide, maxImagePixels } = model.limits;
  if (width <= 0 || height <= 0) throw invalid(field, `image has a zero dimension (${width}×${height})`);
  if (width > maxImageSide || height > maxImageSide) throw invalid(field, `image ${width}×${height} exceeds ${maxImageSide} pixels per side`);
  if (width * height > maxImagePixels) throw invalid(field, `image ${width}×${height} exceeds ${maxImagePixels} pixels`);
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
