import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PromptError, PromptService, TokenizerPool } from '../../src/prompt/index.js';
import { MAX_ASPECT_RATIO } from '../../src/prompt/image-tokens.js';
import { dataUrl, imageBytes, imagePart, MODELS, QWEN2_VL, ROOT, textPart } from '../unit/prompt/helpers.js';

/**
 * Hostile chat JSON and image data URLs through the prompt path (PromptService with the demo model, Qwen2-VL).
 * Invariant: a request either prepares, or fails with one PromptError of a caller-facing code naming the field —
 * never another exception, never `internal` — and limits are enforced from headers and lengths before anything big
 * is decoded or allocated. Not repeated: the fixed bad-input table (test/unit/prompt/bad-input.test.ts) and the probe
 * properties on raw bytes (test/unit/prompt/image-probe.test.ts).
 */

const SEED = 0x4b56_0003;
const SMALL = 'small-limits';
const SMALL_IMAGE_BYTES = 4096;
const CALLER_CODES = ['invalid_argument', 'resource_exhausted', 'not_found', 'failed_precondition'];

let svc: PromptService;
let pool: TokenizerPool;

beforeAll(async () => {
  pool = new TokenizerPool({ size: 1 });
  svc = await PromptService.create({
    pool,
    keys: { blockSize: 16, hashSeed: '' },
    registry: {
      models: [
        QWEN2_VL,
        { name: SMALL, dir: `${MODELS}qwen2-vl`, limits: { maxImageBytes: SMALL_IMAGE_BYTES, maxImages: 4 } },
      ],
    },
  });
}, 60_000);

afterAll(async () => {
  await svc?.close();
  await pool?.close();
});

type Outcome =
  | { ok: true; tokens: number; items: { width?: number | null; height?: number | null; length: number }[] }
  | { ok: false; code: string; field: string; message: string };

/** prepare()'s result, or its PromptError; any other exception fails the test. */
async function outcome(request: unknown): Promise<Outcome> {
  try {
    const r = await svc.prepare(request);
    return {
      ok: true,
      tokens: r.tokenIds.length,
      items: r.items.map((i) => ({ width: i.width, height: i.height, length: i.length })),
    };
  } catch (err) {
    expect(err, String(err)).toBeInstanceOf(PromptError);
    const e = err as PromptError;
    expect(CALLER_CODES, `${e.code}: ${e.message}`).toContain(e.code);
    expect(e.message.length).toBeGreaterThan(0);
    return { ok: false, code: e.code, field: e.field, message: e.message };
  }
}

const chatWith = (model: string, url: string) => ({
  model,
  messages: [{ role: 'user', content: [imagePart(url), textPart('What is this?')] }],
});
const IMG_FIELD = 'messages[0].content[0].image_url';

// --- mutated chats --------------------------------------------------------------------------------------------------

const IMAGES = ['grey-70x70.png', 'grey-640x480.png', 'grey-1024x768.jpg', 'solid-100x100.webp', 'dots-64x48.gif'];
const partArb = fc.oneof(
  fc.string({ maxLength: 40 }).map((t) => textPart(t)),
  fc.constantFrom(...IMAGES).map((f) => imagePart(dataUrl(f, f.endsWith('.png') ? 'image/png' : 'image/x'))),
);
const messageArb = fc.record({
  role: fc.constantFrom('system', 'user', 'assistant'),
  content: fc.oneof(fc.string({ maxLength: 60 }), fc.array(partArb, { minLength: 1, maxLength: 3 })),
});
const chatArb = fc.array(messageArb, { minLength: 1, maxLength: 4 });

/** Deep values print as `label` in counterexamples (fast-check's printer would overflow the stack on them). */
function named(v: unknown, label: string): unknown {
  Object.defineProperty(v as object, fc.toStringMethod, { value: () => label, enumerable: false });
  return v;
}

/** Values that do not belong where they land: wrong types, huge strings, deep nesting, lone surrogates, `__proto__`. */
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(42, -1, 1.5, true, null, [], {}, '', 'x', Number.MAX_SAFE_INTEGER, 2 ** 64),
  fc.constantFrom(
    '\uD800',
    'a\uDFFFb',
    '\uFFFD',
    '\u0000',
    '<|image_pad|>',
    '<|vision_start|>',
    '{{ raise_exception("x") }}',
  ),
  fc.integer({ min: 10_000, max: 60_000 }).map((n) => 'ab '.repeat(n)),
  fc.integer({ min: 100, max: 5_000 }).map((depth) => {
    let v: unknown = 'leaf';
    for (let i = 0; i < depth; i++) v = [v];
    return named(v, `[…${depth} nested arrays…]`);
  }),
  fc.integer({ min: 100, max: 5_000 }).map((depth) => {
    let v: unknown = { role: 'user', content: 'x' };
    for (let i = 0; i < depth; i++) v = { content: v };
    return named(v, `{content: …${depth} nested objects…}`);
  }),
  fc.constant(JSON.parse('{"__proto__": {"role": "user", "content": "polluted"}, "role": "user"}') as unknown),
  fc.constantFrom<unknown>(
    { type: 'image_url', image_url: { url: 'data:image/png;base64,' } },
    { type: 'image_url', image_url: 'https://example.com/x.png' },
    { type: 'input_audio' },
  ),
);

/** Every path into a JSON value (arrays and objects), the root first. */
function paths(v: unknown, at: (string | number)[] = []): (string | number)[][] {
  const out = [at];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...at, i])));
  else if (v !== null && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...at, k]));
  return out;
}

function replaceAt(root: unknown, path: (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const copy: any = Array.isArray(root) ? [...root] : { ...(root as object) };
  copy[path[0]] = replaceAt(copy[path[0]], path.slice(1), value);
  return copy;
}

describe('mutated chat messages', () => {
  it('a hostile value anywhere in a valid chat: prepared, or one caller-facing PromptError naming a messages field; the same again on a retry', async () => {
    await fc.assert(
      fc.asyncProperty(
        chatArb,
        fc.nat(),
        hostileValue,
        fc.constantFrom('replace', 'delete-key', 'add-key'),
        async (chat, pick, value, how) => {
          const all = paths(chat);
          const path = all[pick % all.length];
          let messages: unknown;
          if (how === 'replace' || path.length === 0) messages = replaceAt(chat, path, value);
          else if (how === 'delete-key') messages = replaceAt(chat, path, undefined);
          else {
            // Extra keys on an object (a message or part): tool_calls, name, reasoning, uuid carrying the value.
            const target = path.reduce<any>((v, k) => v[k], chat);
            const isObj = target !== null && typeof target === 'object' && !Array.isArray(target);
            messages = replaceAt(
              chat,
              path,
              isObj ? { ...target, tool_calls: value, name: value, reasoning: value, uuid: value } : value,
            );
          }
          const request = { model: QWEN2_VL.name, messages };
          const first = await outcome(request);
          if (!first.ok && first.code === 'invalid_argument') {
            // messages itself nil (null, or the key removed) is "no prompt"; everything else names a messages field
            const nil = messages === null || messages === undefined;
            expect(first.field === '').toBe(nil);
            if (nil) expect(first.message).toBe('give exactly one of messages, prompt, prompt_token_ids');
            else expect(first.field).toMatch(/^messages/);
          }
          expect(await outcome(request)).toStrictEqual(first);
        },
      ),
      { seed: SEED, numRuns: 150 },
    );
    // Still serving: the README's demo chat renders to its known 418 tokens, the image 391 of them.
    const demo = JSON.parse(readFileSync(`${ROOT}fixtures/requests/demo-chat.json`, 'utf8')) as object;
    const r = await outcome(demo);
    expect(r.ok && [r.tokens, r.items.map((i) => i.length)]).toStrictEqual([418, [391]]);
  });
});

describe('hostile request fields next to a valid chat', () => {
  it('regression: a deeply nested lora is invalid_argument (it was JSON-stringified into the message: RangeError, an internal error)', async () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 20_000; i++) deep = [deep];
    expect(
      await outcome({ model: QWEN2_VL.name, lora: deep, messages: [{ role: 'user', content: 'hi' }] }),
    ).toStrictEqual({
      ok: false,
      code: 'invalid_argument',
      field: 'lora',
      // Refused by the nesting bound (prompt-service.ts requestFields) before its type is looked at.
      message: 'lora: nested deeper than 512 levels',
    });
    expect(
      await outcome({ model: QWEN2_VL.name, lora: [['x']], messages: [{ role: 'user', content: 'hi' }] }),
    ).toStrictEqual({
      ok: false,
      code: 'invalid_argument',
      field: 'lora',
      message: 'lora: must be a non-empty string',
    });
    // Unknown names are quoted in messages cut to 80 characters, not whole.
    expect(await outcome({ model: 'm'.repeat(100_000), prompt: 'x' })).toStrictEqual({
      ok: false,
      code: 'not_found',
      field: 'model',
      message: `model: unknown model "${'m'.repeat(77)}..."; known models: ${QWEN2_VL.name}, ${SMALL}`,
    });
  });

  it('chat_template_kwargs, tools, mm_processor_kwargs, flags, cache_salt, model, lora: prepared or one caller-facing PromptError', async () => {
    const field = fc.constantFrom(
      'chat_template_kwargs',
      'tools',
      'mm_processor_kwargs',
      'add_generation_prompt',
      'continue_final_message',
      'add_special_tokens',
      'cache_salt',
      'model',
      'lora',
    );
    await fc.assert(
      fc.asyncProperty(
        chatArb,
        field,
        fc.oneof(
          hostileValue,
          hostileValue.map((v) => ({ nested: v, tools: v, enable_thinking: v })),
        ),
        async (chat, key, value) => {
          const request = { model: QWEN2_VL.name, messages: chat, [key]: value };
          const first = await outcome(request);
          expect(await outcome(request)).toStrictEqual(first);
        },
      ),
      { seed: SEED + 6, numRuns: 150 },
    );
  });
});

// --- image headers with declared sizes ------------------------------------------------------------------------------

/** The verdict of spec/multimodal.md's size rules for a declared width×height (images.ts checks them in this order). */
function sizeVerdict(w: number, h: number): string | null {
  if (w <= 0 || h <= 0) return `image has a zero dimension (${w}×${h})`;
  if (w > 65_500 || h > 65_500) return `image ${w}×${h} exceeds 65500 pixels per side`;
  if (w * h > 178_956_970) return `image ${w}×${h} exceeds 178956970 pixels`;
  if (Math.max(w, h) / Math.min(w, h) > MAX_ASPECT_RATIO)
    return `image aspect ratio ${w}×${h} is more than ${MAX_ASPECT_RATIO}`;
  return null;
}

type Header = { format: string; bytes: Buffer; width: number; height: number };

/** A real file of each format with the declared size rewritten in its header (pixels untouched, never decoded). */
function withSize(format: string, w: number, h: number): Header {
  switch (format) {
    case 'png': {
      const b = Buffer.from(imageBytes('grey-70x70.png'));
      b.writeUInt32BE(w, 16);
      b.writeUInt32BE(h, 20);
      return { format, bytes: b, width: w, height: h };
    }
    case 'gif': {
      const b = Buffer.from(imageBytes('dots-64x48.gif'));
      b.writeUInt16LE(w & 0xffff, 6);
      b.writeUInt16LE(h & 0xffff, 8);
      return { format, bytes: b, width: w & 0xffff, height: h & 0xffff };
    }
    case 'jpeg': {
      // SOI, an APP0 and a COM segment to skip, then SOF0 with height and width, then EOI.
      const sof = Buffer.from([
        0xff,
        0xc0,
        0x00,
        0x11,
        0x08,
        (h >> 8) & 0xff,
        h & 0xff,
        (w >> 8) & 0xff,
        w & 0xff,
        0x03,
        1,
        0x22,
        0,
        2,
        0x11,
        1,
        3,
        0x11,
        1,
      ]);
      const b = Buffer.concat([
        Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x06, 0x4a, 0x46, 0x49, 0x46]),
        Buffer.from([0xff, 0xfe, 0x00, 0x04, 0x68, 0x69]),
        sof,
        Buffer.from([0xff, 0xd9]),
      ]);
      return { format, bytes: b, width: w & 0xffff, height: h & 0xffff };
    }
    default: {
      // WebP VP8X: 24-bit width-1 and height-1.
      const b = Buffer.from(imageBytes('solid-300x200-vp8x.webp'));
      const ww = Math.max(1, Math.min(w, 1 << 24));
      const hh = Math.max(1, Math.min(h, 1 << 24));
      b.writeUIntLE(ww - 1, 24, 3);
      b.writeUIntLE(hh - 1, 27, 3);
      return { format, bytes: b, width: ww, height: hh };
    }
  }
}

const sideArb = fc.oneof(
  fc.integer({ min: 1, max: 4_000 }),
  fc.integer({ min: 0, max: 70_000 }),
  fc.constantFrom(0, 1, 65_500, 65_501, 65_535, 100_000, 2 ** 24, 2 ** 32 - 1),
);

describe('image headers', () => {
  it('declared sizes, gigantic ones included (100000×100000, 2^32-1): judged from the header alone, exactly by the size rules', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('png', 'gif', 'jpeg', 'webp'), sideArb, sideArb, async (format, w, h) => {
        const img = withSize(format, w, h);
        const r = await outcome(chatWith(QWEN2_VL.name, `data:image/${format};base64,${img.bytes.toString('base64')}`));
        const verdict = sizeVerdict(img.width, img.height);
        if (verdict === null) {
          expect(r.ok && r.items.map((i) => [i.width, i.height])).toStrictEqual([[img.width, img.height]]);
        } else {
          expect(r).toStrictEqual({
            ok: false,
            code: 'invalid_argument',
            field: IMG_FIELD,
            message: `${IMG_FIELD}: ${verdict}`,
          });
        }
      }),
      { seed: SEED + 1, numRuns: 200 },
    );
    // The zip-bomb shape of the issue: a PNG declaring 100000×100000 (10^10 pixels) in a 100-byte file.
    const bomb = withSize('png', 100_000, 100_000);
    expect(
      await outcome(chatWith(QWEN2_VL.name, `data:image/png;base64,${bomb.bytes.toString('base64')}`)),
    ).toStrictEqual({
      ok: false,
      code: 'invalid_argument',
      field: IMG_FIELD,
      message: `${IMG_FIELD}: image 100000×100000 exceeds 65500 pixels per side`,
    });
  });

  it('random byte changes in the first 40 bytes of real files of every format: prepared or invalid_argument naming the image', async () => {
    const files = [
      'grey-70x70.png',
      'grey-640x480.png',
      'grey-1024x768.jpg',
      'solid-100x100.webp',
      'solid-300x200-vp8x.webp',
      'dots-64x48.gif',
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...files),
        fc.array(fc.tuple(fc.nat(39), fc.nat(255)), { minLength: 1, maxLength: 6 }),
        fc.nat(),
        async (file, sets, cut) => {
          const b = Buffer.from(imageBytes(file));
          for (const [at, v] of sets) if (at < b.length) b[at] = v;
          const bytes = cut % 3 === 0 ? b.subarray(0, cut % b.length) : b;
          const r = await outcome(chatWith(QWEN2_VL.name, `data:image/png;base64,${bytes.toString('base64')}`));
          if (!r.ok) expect([r.code, r.field]).toStrictEqual(['invalid_argument', IMG_FIELD]);
        },
      ),
      { seed: SEED + 2, numRuns: 200 },
    );
  });
});

// --- base64 and image byte limits -----------------------------------------------------------------------------------

describe('data URL payloads', () => {
  const STRICT_BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

  it('bad base64 (wrong alphabet, padding, length, whitespace, url-safe): invalid_argument naming the image, nothing decoded', async () => {
    const good = imageBytes('grey-70x70.png').toString('base64');
    const mangle = fc.oneof(
      fc
        .tuple(fc.nat(good.length - 1), fc.constantFrom('-', '_', ' ', '\n', '=', '.', '\u00e9', '\uD800', '%', '*'))
        .map(([at, c]) => good.slice(0, at) + c + good.slice(at + 1)),
      fc.nat(good.length - 1).map((n) => good.slice(0, n)),
      fc.constantFrom(
        `${good}=`,
        `${good}====`,
        `=${good.slice(1)}`,
        `${good.slice(0, -4)}A===`,
        good.replace(/(.{8})/g, '$1\n'),
      ),
      fc.string({ unit: 'binary', minLength: 1, maxLength: 80 }),
    );
    await fc.assert(
      fc.asyncProperty(mangle, async (data) => {
        const r = await outcome(chatWith(QWEN2_VL.name, `data:image/png;base64,${data}`));
        if (data.length % 4 !== 0 || !STRICT_BASE64.test(data)) {
          expect(r).toStrictEqual({
            ok: false,
            code: 'invalid_argument',
            field: IMG_FIELD,
            message: `${IMG_FIELD}: data URL payload is not valid base64`,
          });
        } else if (!r.ok) {
          expect([r.code, r.field]).toStrictEqual(['invalid_argument', IMG_FIELD]);
        }
      }),
      { seed: SEED + 3, numRuns: 300 },
    );
  });

  it('maxImageBytes: an image of exactly the limit is accepted, one byte over is RESOURCE_EXHAUSTED from the base64 length', async () => {
    const png = imageBytes('grey-70x70.png');
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: png.length, max: 2 * SMALL_IMAGE_BYTES }),
        fc.boolean(),
        async (size, validBase64) => {
          // The real 70×70 PNG padded with zeros to `size` bytes (decoders ignore what follows IEND).
          const bytes = Buffer.concat([png, Buffer.alloc(size - png.length)]);
          let data = bytes.toString('base64');
          if (!validBase64) data = `${data.slice(0, -4)}@@@@`; // the length is what counts: not even validated
          const r = await outcome(chatWith(SMALL, `data:image/png;base64,${data}`));
          if (size > SMALL_IMAGE_BYTES) {
            const declared = Math.floor(data.length / 4) * 3 - (data.endsWith('==') ? 2 : data.endsWith('=') ? 1 : 0);
            expect(r).toStrictEqual({
              ok: false,
              code: 'resource_exhausted',
              field: IMG_FIELD,
              message: `${IMG_FIELD}: image data is ${declared} bytes, more than the limit of ${SMALL_IMAGE_BYTES}`,
            });
          } else if (validBase64) {
            expect(r.ok && r.items.map((i) => [i.width, i.height])).toStrictEqual([[70, 70]]);
          } else {
            expect(r).toMatchObject({ ok: false, code: 'invalid_argument', field: IMG_FIELD });
          }
        },
      ),
      { seed: SEED + 4, numRuns: 120 },
    );
  });

  it('gigantic base64 (24 MiB, over the default 20 MiB) is refused without being decoded or validated', async () => {
    const data = 'A'.repeat(32 * 2 ** 20); // 24 MiB once decoded, and invalid (no image): only the length is looked at
    const before = process.memoryUsage().arrayBuffers;
    const r = await outcome(chatWith(QWEN2_VL.name, `data:image/png;base64,${data}`));
    const grownMb = (process.memoryUsage().arrayBuffers - before) / 2 ** 20;
    expect(r).toStrictEqual({
      ok: false,
      code: 'resource_exhausted',
      field: IMG_FIELD,
      message: `${IMG_FIELD}: image data is ${24 * 2 ** 20} bytes, more than the limit of ${20 * 2 ** 20}`,
    });
    expect(grownMb).toBeLessThan(8); // decoding would have allocated 24 MiB of buffers
  });
});
