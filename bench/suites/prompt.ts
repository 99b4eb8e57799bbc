import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PromptService } from '../../src/prompt/index.js';
import { percentile, rng, type Suite } from '../harness.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MODEL = 'Qwen/Qwen2-VL-2B-Instruct';

/** Varied English/code text from the repository's own docs and sources, cut into message-sized pieces. */
function textPool(): string[] {
  const files = [
    'docs/architecture.md',
    'README.md',
    'src/keys/block-hasher.ts',
    'src/prompt/prompt-service.ts',
    'src/prompt/image-probe.ts',
  ];
  const text = files.map((f) => readFileSync(`${ROOT}${f}`, 'utf8')).join('\n');
  const pieces: string[] = [];
  for (let i = 0; i < text.length; i += 1500) pieces.push(text.slice(i, i + 1500));
  return pieces;
}

/** A multi-turn chat of about `tokens` tokens (≈ 3.5 characters per token for this text). */
export function chatOf(tokens: number, seed: number): { role: string; content: string }[] {
  const pool = textPool();
  const random = rng(seed);
  const messages = [{ role: 'system', content: 'You are a careful code reviewer.' }];
  let chars = 0;
  for (let turn = 0; chars < tokens * 3.5; turn++) {
    const content = `${seed}-${turn}: ${pool[Math.floor(random() * pool.length)]}`;
    messages.push({ role: turn % 2 === 0 ? 'user' : 'assistant', content });
    chars += content.length;
  }
  if (messages[messages.length - 1].role !== 'user') messages.push({ role: 'user', content: 'Summarise.' });
  return messages;
}

const dataUrl = (file: string, type: string) =>
  `data:${type};base64,${readFileSync(`${ROOT}fixtures/images/${file}`).toString('base64')}`;

/**
 * Read path front half: chat render + tokenization (worker pool) + keys, cold (empty prefix cache) and with the
 * conversation's earlier turns cached; and render + image expansion + keys for a chat with 4 images.
 */
export const promptSuite: Suite = {
  name: 'prompt',
  description: 'chat render + tokenize + keys (Qwen2-VL tokenizer/template), cold vs prefix-cached; 4-image chat',
  async run({ quick }) {
    const svc = await PromptService.create({
      keys: { blockSize: 16, hashSeed: '' },
      registry: {
        workers: 2,
        models: [{ name: MODEL, dir: `${ROOT}fixtures/models/qwen2-vl`, limits: { maxTokens: 200_000 } }],
      },
    });
    const cache = svc.registry.cache!;
    const figures: Record<string, { value: number; unit: string; goal?: string }> = {};
    const parameters: Record<string, unknown> = { model: MODEL, workers: 2, blockSize: 16 };
    try {
      // Warm the tokenizer in both workers (model load and JIT), then measure.
      for (let i = 0; i < (quick ? 1 : 5); i++) {
        cache.clear();
        await svc.keys({ model: MODEL, messages: chatOf(8192, 900 + i) });
      }
      for (const size of [2048, 8192, 32768]) {
        const rounds = quick ? 3 : size >= 32768 ? 8 : 20;
        const cold: number[] = [];
        const cached: number[] = [];
        let tokens = 0;
        for (let r = 0; r < rounds; r++) {
          const messages = chatOf(size, size + r);
          cache.clear();
          let t0 = performance.now();
          const first = await svc.keys({ model: MODEL, messages });
          cold.push(performance.now() - t0);
          tokens = first.tokenIds.length;
          // The next turn of the same conversation: everything before the new user message is cached.
          const next = [
            ...messages,
            { role: 'assistant', content: 'Done.' },
            { role: 'user', content: `And now? (${r})` },
          ];
          t0 = performance.now();
          await svc.keys({ model: MODEL, messages: next });
          cached.push(performance.now() - t0);
        }
        const label = `${size / 1024}k`;
        parameters[`tokens${label}`] = tokens;
        figures[`coldTokensPerSec${label}`] = {
          value: Math.round(tokens / (percentile(cold, 50) / 1000)),
          unit: 'tokens/s',
        };
        figures[`coldP50Ms${label}`] = {
          value: percentile(cold, 50),
          unit: 'ms',
          ...(size === 8192 ? { goal: '≤ 15' } : {}),
        };
        figures[`cachedTokensPerSec${label}`] = {
          value: Math.round(tokens / (percentile(cached, 50) / 1000)),
          unit: 'tokens/s',
        };
        figures[`cachedP50Ms${label}`] = { value: percentile(cached, 50), unit: 'ms' };
      }

      const images = [
        dataUrl('grey-640x480.png', 'image/png'),
        dataUrl('grey-1024x768.jpg', 'image/jpeg'),
        dataUrl('solid-100x100.webp', 'image/webp'),
        dataUrl('dots-64x48.gif', 'image/gif'),
      ];
      const fourImages = (i: number) => ({
        model: MODEL,
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: `Compare these (${i}):` },
              ...images.map((url) => ({ type: 'image_url', image_url: { url } })),
            ],
          },
        ],
      });
      const rounds = quick ? 20 : 300;
      for (let i = 0; i < 20; i++) await svc.keys(fourImages(i));
      const lat: number[] = [];
      let total = 0;
      for (let i = 0; i < rounds; i++) {
        const t0 = performance.now();
        const r = await svc.keys(fourImages(i));
        lat.push(performance.now() - t0);
        total = r.tokenIds.length;
      }
      parameters.fourImageTokens = total;
      figures.fourImagesP50Ms = { value: percentile(lat, 50), unit: 'ms' };
      figures.fourImagesP99Ms = { value: percentile(lat, 99), unit: 'ms' };
    } finally {
      await svc.close();
    }
    return { parameters, figures };
  },
};
