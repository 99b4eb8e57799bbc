import { credentials, loadPackageDefinition, status, type GrpcObject } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';
import type { RunningApi } from '../../src/service/start-api.js';
import { startTestService, type TestService } from '../support/service.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcClient } from '../support/grpc-client.js';

const MODEL = 'Qwen/Qwen2-VL-2B-Instruct';
/** A chat long enough (~30k tokens, distinct per call so no cache helps) to still be in flight when checked. */
const longChat = (i: number) =>
  JSON.stringify([{ role: 'user', content: `request ${i}: ${'lorem ipsum dolor sit amet '.repeat(5_000)}` }]);

describe('gRPC lifecycle: reflection, deadlines, graceful shutdown', () => {
  let t: TestService;
  let api: RunningApi;
  let kv: ReturnType<typeof grpcClient>;

  beforeAll(async () => {
    t = await startTestService({ demoModel: true });
    ({ api } = t);
    kv = t.kv;
  }, 60_000);

  afterAll(async () => {
    await t?.stop();
  });

  it('lists its services through server reflection (what grpcurl uses)', async () => {
    const dir = fileURLToPath(new URL('../../node_modules/@grpc/reflection/build/proto/', import.meta.url));
    const def = loadSync('grpc/reflection/v1alpha/reflection.proto', { includeDirs: [dir], keepCase: true });
    const Reflection = ((loadPackageDefinition(def).grpc as GrpcObject).reflection as GrpcObject).v1alpha as GrpcObject;
    const Ctor = Reflection.ServerReflection as unknown as new (
      a: string,
      c: unknown,
    ) => {
      ServerReflectionInfo(): NodeJS.EventEmitter & { write(m: object): void; end(): void };
      close(): void;
    };
    const client = new Ctor(`127.0.0.1:${api.grpcPort}`, credentials.createInsecure());
    try {
      const names = await new Promise<string[]>((resolve, reject) => {
        const call = client.ServerReflectionInfo();
        call.on('data', (res: { list_services_response?: { service: { name: string }[] } }) => {
          resolve(res.list_services_response!.service.map((s) => s.name).sort());
          call.end();
        });
        call.on('error', reject);
        call.write({ list_services: '' });
      });
      expect(names).toEqual(
        expect.arrayContaining(['grpc.health.v1.Health', 'indexer.v1.IndexerService', 'kvindexer.v1.KvIndexer']),
      );
    } finally {
      client.close();
    }
  });

  it('honours deadlines: a call whose deadline passes fails with DEADLINE_EXCEEDED and the server keeps serving', async () => {
    const err = await kv.call('Score', { model: MODEL, chat: { messagesJson: longChat(-1) } }, 1).catch((e) => e);
    expect(err.code).toBe(status.DEADLINE_EXCEEDED);
    const ok = await kv.call('Score', { model: MODEL, tokens: { tokenIds: [1, 2, 3] } });
    expect(ok.totalBlocks).toBe(0);
  });

  it('drains calls in flight on shutdown and refuses new ones', async () => {
    const inFlight = Array.from({ length: 8 }, (_, i) =>
      kv.call('Score', { model: MODEL, chat: { messagesJson: longChat(i) } }, 30_000).then(
        (res) => res.tokenCount as number,
        (e) => e,
      ),
    );
    // Let the calls reach the server before it stops.
    await new Promise((r) => setTimeout(r, 100));
    await api.stop();
    const results = await Promise.all(inFlight);
    for (const r of results) expect(typeof r === 'number' && r > 25_000 ? 'answered' : r).toBe('answered');
    const after = await kv.call('Score', { model: MODEL, tokens: { tokenIds: [1] } }, 2_000).catch((e) => e);
    expect(after.code).toBe(status.UNAVAILABLE);
  });
});
