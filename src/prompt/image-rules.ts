import { invalid, PromptError } from './errors.js';
import { dimensionImageTokens, gemma4ImageTokens, qwenImageTokens } from './image-tokens.js';
import type { ImageOverrides, ImageStrategy } from './model-config.js';
import { modelType, numberField, tokenString, type ModelFiles } from './model-dir.js';

/** Per-request processor kwargs (vLLM `mm_processor_kwargs`) that change image token counts. */
export interface ImageKwargs {
  min_pixels?: number;
  max_pixels?: number;
  size?: { shortest_edge?: number; longest_edge?: number };
  max_soft_tokens?: number;
}

/**
 * How one model turns an image into placeholder tokens. The template emits `target` once per image (in the "string"
 * content format the text `placeholderText` is inserted instead); the target token is replaced in place by
 * `prefix + N × repeat + suffix`, and that whole replacement is the item's placeholder range. Token fields are token
 * strings; their ids come from the model's tokenizer.
 */
export interface ImageRule {
  strategy: Exclude<ImageStrategy, 'none'>;
  target: string;
  placeholderText: string;
  prefix: string[];
  repeat: string;
  suffix: string[];
  /** Gemma 3: re-merge "\n" + "\n\n" style neighbours after expansion, as vLLM does. */
  mergeNewlines: boolean;
  /** False for fixed-count rules, which never need the image size. */
  needsSize: boolean;
  defaultSize: { width: number; height: number } | null;
  /** Parameters, for docs and the CLI. */
  params: Record<string, number | string>;
  count(width: number, height: number, kwargs: ImageKwargs | undefined, field?: string): number;
}

const QWEN_DEFAULT_PIXELS = { min: 3136, max: 1_003_520 };

export function detectStrategy(files: ModelFiles): ImageStrategy {
  const type = modelType(files.config) ?? '';
  if (type === 'qwen2_vl' || type === 'qwen2_5_vl') return 'qwen2-vl';
  if (/^qwen3_vl/.test(type) || /^qwen3_5/.test(type)) return 'qwen3-vl';
  if (type === 'gemma3') return 'gemma3';
  if (/^gemma4/.test(type) && !/text/.test(type)) return 'gemma4';
  if (type === 'llava') return 'llava';
  return 'none';
}

/** Resolves the image rule of a model (config.json model_type + preprocessor_config.json + overrides), or null. */
export function resolveImageRule(files: ModelFiles, o: ImageOverrides, where: string): ImageRule | null {
  const strategy = o.strategy ?? detectStrategy(files);
  const tc = files.tokenizerConfig;
  const pp = files.preprocessor;
  const defaultSize = o.defaultWidth && o.defaultHeight ? { width: o.defaultWidth, height: o.defaultHeight } : null;
  const need = (value: string | undefined, name: string): string => {
    if (!value) throw new PromptError('failed_precondition', `image strategy "${strategy}" needs image.${name}`, where);
    return value;
  };
  switch (strategy) {
    case 'none':
      return null;
    case 'qwen2-vl':
    case 'qwen3-vl': {
      const qwen3 = strategy === 'qwen3-vl';
      const patch = o.patchSize ?? numberField(pp, 'patch_size') ?? (qwen3 ? 16 : 14);
      const merge = o.mergeSize ?? numberField(pp, 'merge_size') ?? 2;
      const base = {
        factor: patch * merge,
        minPixels:
          o.minPixels ??
          numberField(pp, 'min_pixels') ??
          numberField(pp, 'size', 'shortest_edge') ??
          QWEN_DEFAULT_PIXELS.min,
        maxPixels:
          o.maxPixels ??
          numberField(pp, 'max_pixels') ??
          numberField(pp, 'size', 'longest_edge') ??
          QWEN_DEFAULT_PIXELS.max,
      };
      const pad = o.imageToken ?? tokenString(tc.image_token) ?? '<|image_pad|>';
      const start = o.beginToken ?? tokenString(tc.vision_start_token) ?? '<|vision_start|>';
      const end = o.endToken ?? tokenString(tc.vision_end_token) ?? '<|vision_end|>';
      return {
        strategy,
        target: pad,
        placeholderText: `${start}${pad}${end}`,
        prefix: [],
        repeat: pad,
        suffix: [],
        mergeNewlines: false,
        needsSize: true,
        defaultSize,
        params: { factor: base.factor, minPixels: base.minPixels, maxPixels: base.maxPixels },
        count(width, height, kwargs, field) {
          const minPixels = kwargs?.min_pixels ?? kwargs?.size?.shortest_edge ?? base.minPixels;
          const maxPixels = kwargs?.max_pixels ?? kwargs?.size?.longest_edge ?? base.maxPixels;
          return qwenImageTokens(width, height, { factor: base.factor, minPixels, maxPixels }, field);
        },
      };
    }
    case 'gemma3': {
      const boi = o.beginToken ?? tokenString(tc.boi_token) ?? '<start_of_image>';
      const soft = o.imageToken ?? tokenString(tc.image_token) ?? '<image_soft_token>';
      const eoi = o.endToken ?? tokenString(tc.eoi_token) ?? '<end_of_image>';
      const n =
        o.tokensPerImage ??
        numberField(pp, 'mm_tokens_per_image') ??
        numberField(files.config, 'mm_tokens_per_image') ??
        256;
      return {
        strategy,
        target: boi,
        placeholderText: boi,
        prefix: ['\n\n', boi],
        repeat: soft,
        suffix: [eoi, '\n\n'],
        mergeNewlines: true,
        needsSize: false,
        defaultSize,
        params: { tokensPerImage: n },
        count: () => n,
      };
    }
    case 'gemma4': {
      const boi = o.beginToken ?? tokenString(tc.boi_token) ?? '<start_of_image>';
      const img = need(o.imageToken ?? tokenString(tc.image_token) ?? undefined, 'imageToken');
      const eoi = need(o.endToken ?? tokenString(tc.eoi_token) ?? undefined, 'endToken');
      const budget = o.maxSoftTokens ?? numberField(pp, 'max_soft_tokens') ?? 280;
      return {
        strategy,
        target: o.placeholderToken ?? boi,
        placeholderText: o.placeholderToken ?? boi,
        prefix: [boi],
        repeat: img,
        suffix: [eoi],
        mergeNewlines: false,
        needsSize: true,
        defaultSize,
        params: { maxSoftTokens: budget },
        count(width, height, kwargs, field) {
          const b = kwargs?.max_soft_tokens ?? budget;
          if (![70, 140, 280, 560, 1120].includes(b))
            throw invalid(field, `max_soft_tokens must be one of 70, 140, 280, 560, 1120`);
          return gemma4ImageTokens(width, height, b);
        },
      };
    }
    case 'llava': {
      const token = o.placeholderToken ?? tokenString(tc.image_token) ?? '<image>';
      const image = numberField(files.config, 'vision_config', 'image_size') ?? 336;
      const patch = numberField(files.config, 'vision_config', 'patch_size') ?? 14;
      const n = o.tokensPerImage ?? (image / patch) ** 2;
      return {
        strategy,
        target: token,
        placeholderText: token,
        prefix: [],
        repeat: o.imageToken ?? token,
        suffix: [],
        mergeNewlines: false,
        needsSize: false,
        defaultSize,
        params: { tokensPerImage: n },
        count: () => n,
      };
    }
    case 'dimension':
    case 'fixed': {
      const token = need(o.placeholderToken, 'placeholderToken');
      const perToken = strategy === 'dimension' ? (o.pixelsPerToken ?? 1024) : 0;
      const fixed = strategy === 'fixed' ? o.tokensPerImage : 0;
      if (strategy === 'fixed' && !fixed) need(undefined, 'tokensPerImage');
      return {
        strategy,
        target: token,
        placeholderText: token,
        prefix: o.beginToken ? [o.beginToken] : [],
        repeat: o.imageToken ?? token,
        suffix: o.endToken ? [o.endToken] : [],
        mergeNewlines: false,
        needsSize: strategy === 'dimension',
        defaultSize,
        params: strategy === 'dimension' ? { pixelsPerToken: perToken } : { tokensPerImage: fixed! },
        count: (w, h) => (strategy === 'dimension' ? dimensionImageTokens(w, h, perToken) : fixed!),
      };
    }
  }
}

/** Token strings a rule needs ids for. */
export function ruleTokens(rule: ImageRule): string[] {
  return [
    ...new Set([
      rule.target,
      ...rule.prefix,
      rule.repeat,
      ...rule.suffix,
      ...(rule.mergeNewlines ? ['\n', '\n\n', '\n\n\n', '\n\n\n\n'] : []),
    ]),
  ];
}
