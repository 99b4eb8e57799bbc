import { invalid } from './errors.js';
import { roundHalfEven } from './python-math.js';

/**
 * Size-aware token counts per image (spec/multimodal.md §2). Pure functions over numbers: the formulas follow the
 * Hugging Face image processors operation by operation, so IEEE doubles round exactly as Python's do.
 */

export const MAX_ASPECT_RATIO = 200;

export interface QwenResizeParams {
  factor: number;
  minPixels: number;
  maxPixels: number;
}

/** Qwen2-VL `smart_resize`: the resized (height, width), multiples of `factor`. */
export function smartResize(height: number, width: number, p: QwenResizeParams, field?: string): [number, number] {
  const { factor, minPixels, maxPixels } = p;
  if (Math.max(height, width) / Math.min(height, width) > MAX_ASPECT_RATIO) {
    throw invalid(
      field,
      `absolute aspect ratio must be smaller than ${MAX_ASPECT_RATIO}, got ${Math.max(height, width) / Math.min(height, width)}`,
    );
  }
  let hBar = roundHalfEven(height / factor) * factor;
  let wBar = roundHalfEven(width / factor) * factor;
  if (hBar * wBar > maxPixels) {
    const beta = Math.sqrt((height * width) / maxPixels);
    hBar = Math.max(factor, Math.floor(height / beta / factor) * factor);
    wBar = Math.max(factor, Math.floor(width / beta / factor) * factor);
  } else if (hBar * wBar < minPixels) {
    const beta = Math.sqrt(minPixels / (height * width));
    hBar = Math.ceil((height * beta) / factor) * factor;
    wBar = Math.ceil((width * beta) / factor) * factor;
  }
  return [hBar, wBar];
}

/** Placeholder tokens for one image on Qwen2-VL / 2.5-VL / 3-VL / 3.5: one per merged patch. */
export function qwenImageTokens(width: number, height: number, p: QwenResizeParams, field?: string): number {
  const [h, w] = smartResize(height, width, p, field);
  return (h / p.factor) * (w / p.factor);
}

export const GEMMA4_BUDGETS = [70, 140, 280, 560, 1120] as const;

/** Gemma 4 soft tokens for one image under a `max_soft_tokens` budget (patch 16, pooling 3). */
export function gemma4ImageTokens(width: number, height: number, maxSoftTokens: number): number {
  const patch = 16;
  const pool = 3;
  const side = patch * pool;
  const maxPatches = maxSoftTokens * pool * pool;
  const scale = Math.sqrt(maxPatches / ((height / patch) * (width / patch)));
  const th = Math.max(side, Math.floor((height * scale) / side) * side);
  const tw = Math.max(side, Math.floor((width * scale) / side) * side);
  return Math.min(Math.floor((Math.floor(th / patch) * Math.floor(tw / patch)) / (pool * pool)), maxSoftTokens);
}

/** Generic dimension-based strategy: one token per `pixelsPerToken` pixels, rounded up. */
export function dimensionImageTokens(width: number, height: number, pixelsPerToken: number): number {
  return Math.ceil((width * height) / pixelsPerToken);
}
