import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  DEFAULT_FETCH_OPTIONS,
  ImageFetcher,
  resolveVllmConfig,
  vllmIdentifier,
  type MmHasher,
} from '../../src/prompt/index.js';
import { VllmEntrySchema } from '../../src/prompt/model-config.js';
import { percentile, type Figure, type Suite } from '../harness.js';

const GOLDEN_IMAGE = new URL('../../../shared/golden/images/coco-000000039769.png', import.meta.url);

/**
 * vLLM image identifiers (issue 12): MB/s of the identifier per hasher on one core (a 20 MB image, hashed in slices
 * that yield to the event loop, as a request does), and the image-URL fetch path against a local HTTP server: cold
 * (a new fetch each time) and cached.
 */
export const mmHashSuite: Suite = {
  name: 'mm-hash',
  description: 'vLLM image identifier MB/s per hasher; image URL fetch latency (local server), cold and cached',
  async run({ quick }) {
    const size = 20 * 1024 * 1024;
    const big = Buffer.alloc(size);
    for (let i = 0; i < size; i += 8) big.writeUInt32LE((i * 2654435761) >>> 0, i);
    const rounds = quick ? 3 : 10;
    const figures: Record<string, Figure> = {};
    for (const hasher of ['blake3', 'sha256', 'sha512'] as MmHasher[]) {
      const cfg = resolveVllmConfig(
        VllmEntrySchema.parse({ version: '0.19.1', mmHasher: hasher }),
        'Qwen/Qwen2-VL-2B-Instruct',
        'bench',
      );
      const req = {
        image: { kind: 'bytes' as const, bytes: big, decodesAsRgb: true },
        kwargs: [],
        addSpecialTokens: false,
        maxTokens: null,
        lora: null,
      };
      await vllmIdentifier(cfg, req); // warm-up (WASM instantiation)
      const started = process.hrtime.bigint();
      for (let r = 0; r < rounds; r++) await vllmIdentifier(cfg, req);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      figures[`identifier_${hasher}_MBps`] = {
        value: (rounds * size) / 1e6 / seconds,
        unit: 'MB/s',
        ...(hasher === 'blake3' ? { goal: '≥ 500' } : {}),
      };
    }

    const png = readFileSync(GOLDEN_IMAGE);
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length });
      res.end(png);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const fetcher = new ImageFetcher({
      ...DEFAULT_FETCH_OPTIONS,
      enabled: true,
      allowHosts: ['127.0.0.1'],
      allowPrivateAddresses: true,
    });
    const n = quick ? 50 : 300;
    const cold: number[] = [];
    const cached: number[] = [];
    try {
      for (let i = 0; i < n; i++) {
        const url = `${base}/img.png?${i}`;
        const pending: [string, Uint8Array][] = [];
        let t = process.hrtime.bigint();
        const first = await fetcher.fetch(url, pending);
        cold.push(Number(process.hrtime.bigint() - t) / 1e6);
        if (first.outcome !== 'fetched') throw new Error(`bench fetch failed: ${first.outcome}`);
        fetcher.commit(pending);
        t = process.hrtime.bigint();
        const again = await fetcher.fetch(url, []);
        cached.push(Number(process.hrtime.bigint() - t) / 1e6);
        if (again.outcome !== 'cached') throw new Error('bench fetch was not cached');
      }
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
    figures.fetchColdP50 = { value: percentile(cold, 50), unit: 'ms' };
    figures.fetchColdP99 = { value: percentile(cold, 99), unit: 'ms' };
    figures.fetchCachedP50 = { value: percentile(cached, 50), unit: 'ms' };
    figures.fetchCachedP99 = { value: percentile(cached, 99), unit: 'ms' };
    return {
      parameters: {
        imageBytes: size,
        rounds,
        vllm: '0.19.1',
        fetchImageBytes: png.length,
        fetches: n,
        sliceBytes: 1 << 20,
      },
      figures,
    };
  },
};
