import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { blake3 } from '@noble/hashes/blake3.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodesAsRgb,
  digestChunks,
  mmHashChunks,
  parsePyObject,
  probeImageSize,
  PromptService,
  resolveVllmConfig,
  vllmIdentifier,
  type MmHasher,
  type VllmHashConfig,
} from '../../../src/prompt/index.js';
import { VllmEntrySchema } from '../../../src/prompt/model-config.js';
import { SHARED_DIR } from '../../support/golden.js';
import { QWEN2_VL, ROOT, imagePart, textPart } from './helpers.js';

/**
 * vLLM's image identifier (spec/vllm-mm-hash.md). Three independent sources of truth:
 * - the golden (../shared/golden/mm-hash.json): a real vLLM 0.19.1 identifier (BLAKE3) of a real PNG;
 * - mm-hash-vectors.json, printed by test/support/vllm_mm_hash_ref.py: Python builds each version's byte stream from
 *   the spec's tables with json.loads, struct and hashlib, and gives its sha256/sha512 — equal digests mean the
 *   service builds the same bytes;
 * - @noble/hashes' BLAKE3 (pure JS, another implementation than hash-wasm's) over those bytes.
 */

interface Vector {
  name: string;
  version: string;
  model: string;
  image: string;
  kwargs: string;
  uuid: string | null;
  maxModelLen: number | null;
  maxTokens: number | null;
  ioConfig: boolean;
  sha256: string;
  sha512: string;
}

const vectors = (
  JSON.parse(readFileSync(new URL('./mm-hash-vectors.json', import.meta.url), 'utf8')) as { cases: Vector[] }
).cases;
const golden = JSON.parse(readFileSync(`${SHARED_DIR}golden/mm-hash.json`, 'utf8')) as {
  cases: {
    vllm: string;
    model: string;
    image: string;
    imageSha256: string;
    mmHasher: string;
    identifier: string;
    width: number;
    height: number;
    placeholder: { offset: number; length: number };
  }[];
};
const GOLDEN = golden.cases[0];
const goldenBytes = readFileSync(`${SHARED_DIR}golden/${GOLDEN.image}`);

function config(
  version: string,
  extra: Record<string, unknown> = {},
  name = 'Qwen/Qwen2-VL-2B-Instruct',
): VllmHashConfig {
  return resolveVllmConfig(VllmEntrySchema.parse({ version, ...extra }), name, 'models[0]');
}

function requestOf(v: Vector) {
  const bytes = readFileSync(`${ROOT}${v.image}`);
  const format = probeImageSize(bytes).format;
  return {
    image:
      v.uuid !== null
        ? ({ kind: 'uuid', uuid: v.uuid } as const)
        : ({ kind: 'bytes', bytes, decodesAsRgb: decodesAsRgb(format, bytes) } as const),
    kwargs: v.kwargs ? parsePyObject(v.kwargs, 'mm_processor_kwargs') : [],
    addSpecialTokens: false,
    maxTokens: v.maxTokens,
    lora: null,
  };
}

describe('golden: a real vLLM 0.19.1 identifier', () => {
  it('the shipped image is the one the golden names', () => {
    expect(createHash('sha256').update(goldenBytes).digest('hex')).toBe(GOLDEN.imageSha256);
  });

  it('vllmIdentifier reproduces it byte for byte (hash-wasm BLAKE3), and so does @noble/hashes over the same stream', async () => {
    const cfg = config(GOLDEN.vllm, { model: GOLDEN.model });
    expect(cfg.scheme).toBe('v0.17');
    const id = await vllmIdentifier(cfg, {
      image: { kind: 'bytes', bytes: goldenBytes, decodesAsRgb: true },
      kwargs: [],
      addSpecialTokens: false,
      maxTokens: null,
      lora: null,
    });
    expect(id).toBe(GOLDEN.identifier);
    const stream = Buffer.concat(
      mmHashChunks({
        scheme: 'v0.17',
        modelId: GOLDEN.model,
        image: { kind: 'bytes', bytes: goldenBytes, ioConfig: null },
        kwargs: [],
      }),
    );
    expect(Buffer.from(blake3(stream)).toString('hex')).toBe(GOLDEN.identifier);
  });
});

describe('vectors from the Python reference (every format, kwargs, each version stream, uuid rules)', () => {
  it('covers each stream scheme and each format', () => {
    expect(new Set(vectors.map((v) => config(v.version, { maxModelLen: v.maxModelLen ?? undefined }).scheme))).toEqual(
      new Set(['v0.13', 'v0.16', 'v0.17', 'v0.27']),
    );
    expect(new Set(vectors.map((v) => v.image.split('.').pop()))).toEqual(new Set(['png', 'jpg', 'webp', 'gif']));
  });

  for (const v of vectors) {
    it(v.name, async () => {
      const req = requestOf(v);
      // 0.13/0.14 always hash with BLAKE3 (a sha256 config is refused): their stream is checked below.
      const configurable = !/^0\.1[34]\./.test(v.version);
      for (const hasher of (configurable ? ['sha256', 'sha512'] : []) as MmHasher[]) {
        const cfg = config(v.version, { model: v.model, mmHasher: hasher, maxModelLen: v.maxModelLen ?? undefined });
        expect(await vllmIdentifier(cfg, req)).toBe(v[hasher as 'sha256' | 'sha512']);
      }
      // BLAKE3 (the default): the stream the sha256 digest vouched for, hashed by @noble/hashes.
      const cfg = config(v.version, { model: v.model, maxModelLen: v.maxModelLen ?? undefined });
      const image =
        req.image.kind === 'uuid'
          ? req.image
          : {
              kind: 'bytes' as const,
              bytes: req.image.bytes,
              ioConfig: v.ioConfig ? { imageMode: 'RGB', rgbaBackgroundColor: [255, 255, 255] } : null,
            };
      const tokenization =
        cfg.scheme === 'v0.16'
          ? { addSpecialTokens: false, maxLength: v.maxModelLen! - (v.maxTokens ?? 0) + 1 }
          : undefined;
      const stream = Buffer.concat(
        mmHashChunks({
          scheme: cfg.scheme,
          noneAsPickle: cfg.noneAsPickle,
          modelId: v.model,
          image,
          kwargs: req.kwargs,
          tokenization,
        }),
      );
      expect(createHash('sha256').update(stream).digest('hex')).toBe(v.sha256);
      expect(await vllmIdentifier(cfg, req)).toBe(Buffer.from(blake3(stream)).toString('hex'));
    });
  }

  it('0.17+: a uuid without mm_processor_kwargs is used verbatim; 0.15/0.16 always hash it', async () => {
    const req = {
      image: { kind: 'uuid', uuid: 'my-uuid-1' } as const,
      kwargs: [],
      addSpecialTokens: false,
      maxTokens: null,
      lora: null,
    };
    expect(await vllmIdentifier(config('0.19.1'), req)).toBe('my-uuid-1');
    expect(await vllmIdentifier(config('0.27.0'), req)).toBe('my-uuid-1');
    expect(await vllmIdentifier(config('0.15.1'), req)).toMatch(/^[0-9a-f]{64}$/);
    expect(await vllmIdentifier(config('0.16.0', { maxModelLen: 4096 }), req)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('tower-connector LoRA: "<lora>:" in front of the identifier, whatever its source; nothing without a LoRA', async () => {
    const cfg = config('0.19.1', { towerConnectorLora: true });
    const base = { kwargs: [], addSpecialTokens: false, maxTokens: null };
    expect(await vllmIdentifier(cfg, { ...base, image: { kind: 'uuid', uuid: 'u1' }, lora: 'sql-adapter' })).toBe(
      'sql-adapter:u1',
    );
    const bytes = { kind: 'bytes', bytes: goldenBytes, decodesAsRgb: true } as const;
    expect(await vllmIdentifier(cfg, { ...base, image: bytes, lora: 'sql-adapter' })).toBe(
      `sql-adapter:${GOLDEN.identifier}`,
    );
    expect(await vllmIdentifier(cfg, { ...base, image: bytes, lora: null })).toBe(GOLDEN.identifier);
    // Without the engine flag, a LoRA request keeps the plain identifier.
    expect(await vllmIdentifier(config('0.19.1'), { ...base, image: bytes, lora: 'sql-adapter' })).toBe(
      GOLDEN.identifier,
    );
  });
});

describe('decoded mode from the header (≥ 0.27 io_config)', () => {
  const png = (colourType: number) => {
    const b = Buffer.alloc(33);
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]).copy(b);
    b.write('IHDR', 12, 'latin1');
    b.writeUInt32BE(4, 16);
    b.writeUInt32BE(3, 20);
    b[24] = 8;
    b[25] = colourType;
    return b;
  };
  const jpeg = (components: number) =>
    Buffer.from([
      0xff,
      0xd8,
      0xff,
      0xc0,
      0x00,
      0x11,
      0x08,
      0x00,
      0x03,
      0x00,
      0x04,
      components,
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
  const vp8l = (alpha: boolean) => {
    const b = Buffer.alloc(30);
    b.write('RIFF', 0, 'latin1');
    b.write('WEBPVP8L', 8, 'latin1');
    b[20] = 0x2f;
    b.writeUInt32LE(3 | (2 << 14) | (alpha ? 1 << 28 : 0), 21);
    return b;
  };
  const vp8x = (flags: number) => {
    const b = Buffer.alloc(30);
    b.write('RIFF', 0, 'latin1');
    b.write('WEBPVP8X', 8, 'latin1');
    b[20] = flags;
    return b;
  };

  it('PNG: only colour type 2 decodes as RGB', () => {
    expect([0, 2, 3, 4, 6].map((t) => decodesAsRgb('png', png(t)))).toEqual([false, true, false, false, false]);
    expect(probeImageSize(png(6))).toEqual({ format: 'png', width: 4, height: 3 });
  });
  it('JPEG: 3 components → RGB; 1 (L) and 4 (CMYK) do not', () => {
    expect([1, 3, 4].map((c) => decodesAsRgb('jpeg', jpeg(c)))).toEqual([false, true, false]);
    expect(probeImageSize(jpeg(3))).toEqual({ format: 'jpeg', width: 4, height: 3 });
  });
  it('WebP: VP8L alpha-is-used bit, VP8X ALPHA flag (0x10)', () => {
    expect([decodesAsRgb('webp', vp8l(false)), decodesAsRgb('webp', vp8l(true))]).toEqual([true, false]);
    expect([decodesAsRgb('webp', vp8x(0)), decodesAsRgb('webp', vp8x(0x10)), decodesAsRgb('webp', vp8x(0x20))]).toEqual(
      [true, false, true],
    );
  });
  it('GIF: never RGB', () => {
    expect(decodesAsRgb('gif', readFileSync(`${ROOT}fixtures/images/dots-64x48.gif`))).toBe(false);
  });
  it('an RGBA PNG on 0.27 hashes with io_config; the same on 0.19 without, and imageMode null disables it', async () => {
    const bytes = png(6);
    const req = {
      image: { kind: 'bytes', bytes, decodesAsRgb: false } as const,
      kwargs: [],
      addSpecialTokens: false,
      maxTokens: null,
      lora: null,
    };
    const stream = (io: boolean, scheme: 'v0.17' | 'v0.27') =>
      Buffer.concat(
        mmHashChunks({
          scheme,
          modelId: 'm',
          image: {
            kind: 'bytes',
            bytes,
            ioConfig: io ? { imageMode: 'RGB', rgbaBackgroundColor: [255, 255, 255] } : null,
          },
          kwargs: [],
        }),
      );
    const expected = (io: boolean) =>
      createHash('sha256')
        .update(stream(io, io ? 'v0.27' : 'v0.17'))
        .digest('hex');
    // The stream with io_config, spelled out from spec §4.
    const i64 = (n: number) => {
      const b = Buffer.alloc(8);
      b.writeBigInt64LE(BigInt(n));
      return b;
    };
    expect(stream(true, 'v0.27')).toEqual(
      Buffer.concat([
        Buffer.from('imageimage.io_config.image_modeRGB'),
        Buffer.from('image.io_config.rgba_background_color.0'),
        i64(255),
        Buffer.from('image.io_config.rgba_background_color.1'),
        i64(255),
        Buffer.from('image.io_config.rgba_background_color.2'),
        i64(255),
        Buffer.from('image.data'),
        bytes,
        Buffer.from('model_idm'),
      ]),
    );
    expect(await vllmIdentifier(config('0.27.0', { model: 'm', mmHasher: 'sha256' }), req)).toBe(expected(true));
    expect(await vllmIdentifier(config('0.19.1', { model: 'm', mmHasher: 'sha256' }), req)).toBe(expected(false));
    expect(await vllmIdentifier(config('0.27.0', { model: 'm', mmHasher: 'sha256', imageMode: null }), req)).toBe(
      expected(false),
    );
  });
});

describe('configuration errors name the key', () => {
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [{ version: '0.12.0' }, 'models[0].vllm.version', /oldest supported version is 0\.13\.0/],
    [{ version: '0.9.2' }, 'models[0].vllm.version', /decoded pixels/],
    [{ version: 'latest' }, 'models[0].vllm.version', /unknown vLLM version "latest"/],
    [{ version: '0.19' }, 'models[0].vllm.version', /expected X\.Y\.Z/],
    [{ version: '0.14.0', mmHasher: 'sha256' }, 'models[0].vllm.mmHasher', /always hashes with blake3/],
    [{ version: '0.13.0', towerConnectorLora: true }, 'models[0].vllm.towerConnectorLora', /from vLLM 0\.14\.0/],
    [{ version: '0.16.1' }, 'models[0].vllm.maxModelLen', /max_model_len/],
  ];
  for (const [entry, field, message] of cases) {
    it(`${JSON.stringify(entry)} → ${field}`, () => {
      let caught: unknown;
      try {
        config(entry.version as string, entry);
      } catch (err) {
        caught = err;
      }
      expect(caught).toMatchObject({ code: 'failed_precondition', field });
      expect((caught as Error).message).toMatch(message);
    });
  }

  it('an unknown hasher stops the registry load, naming models.0.vllm.mmHasher', async () => {
    await expect(
      PromptService.create({
        keys: { blockSize: 16, hashSeed: '' },
        registry: { workers: 1, models: [{ ...QWEN2_VL, vllm: { version: '0.19.1', mmHasher: 'md5' as 'blake3' } }] },
      }),
    ).rejects.toThrow(/models\.0\.vllm\.mmHasher/);
  });
  it('a version before 0.13 stops the registry load, naming models[0].vllm.version', async () => {
    await expect(
      PromptService.create({
        keys: { blockSize: 16, hashSeed: '' },
        registry: { workers: 1, models: [{ ...QWEN2_VL, vllm: { version: '0.11.2' } }] },
      }),
    ).rejects.toMatchObject({ field: 'models[0].vllm.version' });
  });
});

describe('hashing keeps the event loop responsive', () => {
  it('a 20 MB image: timers fire while it is hashed, and the digest equals one-shot BLAKE3', async () => {
    const big = Buffer.alloc(20 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4096) big[i] = i & 0xff;
    const order: string[] = [];
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    setTimeout(() => order.push('timer'), 0);
    const digest = await digestChunks('blake3', [Buffer.from('image'), big]).then((d) => {
      order.push('digest');
      return d;
    });
    clearInterval(timer);
    // The timeout scheduled after hashing started ran before the digest resolved: hashing yielded in between.
    expect(order).toEqual(['timer', 'digest']);
    expect(ticks).toBeGreaterThan(1);
    expect(digest).toBe(Buffer.from(blake3(Buffer.concat([Buffer.from('image'), big]))).toString('hex'));
  });
});

describe('through the prompt service (chat with an image, no uuid)', () => {
  let svc: PromptService;
  const goldenUrl = `data:image/png;base64,${goldenBytes.toString('base64')}`;
  beforeAll(async () => {
    svc = await PromptService.create({
      keys: { blockSize: 16, hashSeed: '' },
      registry: {
        workers: 1,
        models: [
          { ...QWEN2_VL, vllm: { version: '0.19.1' } },
          {
            ...QWEN2_VL,
            name: 'qwen-served-as',
            loras: ['tower-lora'],
            vllm: { version: '0.19.1', model: GOLDEN.model, towerConnectorLora: true },
          },
          { ...QWEN2_VL, name: 'no-vllm' },
        ],
      },
    });
  });
  afterAll(() => svc?.close());

  const ask = (model: string, extra: Record<string, unknown> = {}, part: Record<string, unknown> = {}) =>
    svc.keys({
      model,
      messages: [{ role: 'user', content: [imagePart(goldenUrl, part), textPart('What is in this image?')] }],
      ...extra,
    });

  it('the golden identifier, its placeholder range, and source vllm-mm-hash', async () => {
    const r = await ask(GOLDEN.model);
    expect(r.items).toHaveLength(1);
    expect(r.items[0]).toMatchObject({
      identifier: GOLDEN.identifier,
      identifierSource: 'vllm-mm-hash',
      ...GOLDEN.placeholder,
      width: GOLDEN.width,
      height: GOLDEN.height,
    });
    // The identifier is what the image's blocks carry (offset 15, length 391 → blocks 0..25).
    expect(r.extras![1]).toEqual([GOLDEN.identifier]);
  });

  it('the engine --model string (vllm.model) is hashed, not the served name; tower-connector LoRA prefixes it', async () => {
    expect((await ask('qwen-served-as')).items[0].identifier).toBe(GOLDEN.identifier);
    expect((await ask('tower-lora')).items[0].identifier).toBe(`tower-lora:${GOLDEN.identifier}`);
  });

  it('without a vllm entry: a content hash (sha256 of the bytes), as before', async () => {
    const r = await ask('no-vllm');
    expect(r.items[0]).toMatchObject({
      identifier: createHash('sha256').update(goldenBytes).digest('hex'),
      identifierSource: 'content-hash',
    });
  });

  it('uuid (verbatim on 0.19), caller identifier: their sources', async () => {
    expect((await ask(GOLDEN.model, {}, { uuid: 'u-42' })).items[0]).toMatchObject({
      identifier: 'u-42',
      identifierSource: 'uuid',
    });
    expect((await ask(GOLDEN.model, {}, { identifier: 'c-1' })).items[0]).toMatchObject({
      identifier: 'c-1',
      identifierSource: 'caller',
    });
  });

  it('mm_processor_kwargs JSON text keeps Python typing (2.0 is a float); the parsed object cannot', async () => {
    const v = vectors.find((x) => x.name.startsWith('golden image, 0.19.1, kwargs'))!;
    const object = JSON.parse(v.kwargs) as Record<string, unknown>;
    const sha = await PromptService.create({
      keys: { blockSize: 16, hashSeed: '' },
      registry: { workers: 1, models: [{ ...QWEN2_VL, vllm: { version: '0.19.1', mmHasher: 'sha256' } }] },
    });
    try {
      const ask2 = (extra: Record<string, unknown>) =>
        sha.keys({
          model: GOLDEN.model,
          messages: [{ role: 'user', content: [imagePart(goldenUrl), textPart('x')] }],
          ...extra,
        });
      expect(
        (await ask2({ mm_processor_kwargs: object, mm_processor_kwargs_json: v.kwargs })).items[0].identifier,
      ).toBe(v.sha256);
      expect((await ask2({ mm_processor_kwargs: object })).items[0].identifier).not.toBe(v.sha256);
      await expect(ask2({ mm_processor_kwargs_json: '{"scale": 2.0,' })).rejects.toMatchObject({
        code: 'invalid_argument',
        field: 'mm_processor_kwargs',
      });
      await expect(ask2({ mm_processor_kwargs_json: '{"model_id": "x"}' })).rejects.toMatchObject({
        code: 'invalid_argument',
        field: 'mm_processor_kwargs.model_id',
      });
    } finally {
      await sha.close();
    }
  });
});
