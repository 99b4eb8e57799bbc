import { status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import type { Publisher } from 'zeromq';
import { startApi, type RunningApi } from '../../src/service/start-api.js';
import { startService, type RunningService } from '../../src/service/start-service.js';
import { ConfigSchema, createLogger } from '../../src/ops/index.js';
import { freePort, startRedis, type RedisServer } from '../support/redis-server.js';
import { startTestService, type TestService } from '../support/service.js';
import { connectedPublisher, kvMessage, tokenRange, waitFor } from '../support/zmq.js';

const MODEL = 'Qwen/Qwen3-8B';

/** Issue 17, bug 8: RemoveEndpoint of a never-published endpoint, and the reason resync clears are counted under. */
describe('RemoveEndpoint of an endpoint that never published', () => {
  let t: TestService;
  afterAll(() => t?.stop());

  it('answers OK (it was connected) and disconnects it; a second call, or an unknown endpoint, is NOT_FOUND and changes nothing', async () => {
    t = await startTestService({ overrides: { zmq: { addresses: [] } } });
    const silent = await freePort(); // nothing publishes there: the endpoint never sends a batch
    const other = await freePort();
    await t.kv.call('AddEndpoint', { endpoint: '10.0.0.9:8000', zmqAddress: `tcp://127.0.0.1:${silent}` });
    await t.kv.call('AddEndpoint', { endpoint: '10.0.0.10:8000', zmqAddress: `tcp://127.0.0.1:${other}` });
    const connected = () => t.service.transport.connectedEndpoints().map((c) => c.spec.endpoint);
    expect(connected()).toEqual(['10.0.0.9:8000', '10.0.0.10:8000']);
    // It used to disconnect the endpoint and then answer NOT_FOUND.
    expect(await t.kv.call('RemoveEndpoint', { endpoint: '10.0.0.9:8000' })).toEqual({ clearedEntries: '0' });
    expect(connected()).toEqual(['10.0.0.10:8000']);
    for (const endpoint of ['10.0.0.9:8000', '10.0.0.77:8000']) {
      const err = (await t.kv.call('RemoveEndpoint', { endpoint }).catch((e: ServiceError) => e)) as ServiceError;
      expect([err.code, err.details]).toEqual([status.NOT_FOUND, `endpoint: "${endpoint}" is not a known endpoint`]);
      expect(connected()).toEqual(['10.0.0.10:8000']);
    }
  });
});

describe('resync clears are counted as reason="resync", not "api"', () => {
  let redis: RedisServer;
  let service: RunningService;
  let api: RunningApi;
  let pub: Publisher;
  afterAll(async () => {
    pub?.close();
    await api?.stop();
    await service?.stop();
    await redis?.stop();
  });

  it('Redis restarted empty: the endpoint is cleared and resynchronised under its own reason', async () => {
    redis = await startRedis();
    const config = ConfigSchema.parse({
      zmq: { addresses: ['tcp://127.0.0.1:*'] },
      index: { backend: 'redis', redisUrl: redis.url, redisKeyPrefix: 'rr:', redisCommandTimeoutMs: 300 },
      api: { grpcAddress: '127.0.0.1:0' },
      metrics: { host: '127.0.0.1', port: 0 },
      log: { level: 'silent', statsIntervalSeconds: 0 },
    });
    const log = createLogger('silent');
    service = await startService(config, log);
    api = await startApi(service, config, log);
    pub = await connectedPublisher(
      service.subscriber.lastEndpoint!,
      kvMessage('kv@10.9.9.9:1@probe', 0, [0, [], null]),
      () => service.pipeline.endpoints().has('10.9.9.9:1'),
    );
    const A = '10.0.0.1:8000';
    await pub.send(
      kvMessage(`kv@${A}@${MODEL}`, 0, [1, [['BlockStored', [1n], null, tokenRange(16), 16, null, null]], null]),
    );
    await waitFor(() => service.pipeline.stream(A)?.last === 0n, 'the first batch applied');
    await service.index.flush();
    await redis.kill();
    await redis.restart();
    // The writer learns on its next writes that the server is a new, empty one: it clears and resynchronises A.
    let seq = 1;
    await waitFor(
      () => {
        void pub.send(
          kvMessage(`kv@${A}@${MODEL}`, seq++, [
            seq,
            [['BlockStored', [BigInt(seq + 10)], null, tokenRange(16, seq * 100), 16, null, null]],
            null,
          ]),
        );
        void service.index.flush().catch(() => undefined);
        return (service.pipeline.counters.clears.resync ?? 0) >= 1;
      },
      'a resync clear',
      15_000,
    );
    expect(service.pipeline.counters.clears.api).toBeUndefined();
    const text = await (await fetch(`http://127.0.0.1:${api.metricsPort}/metrics`)).text();
    expect(text).toMatch(/kv_indexer_endpoint_clears_total\{reason="resync"\} [1-9]/);
    expect(text).not.toContain('kv_indexer_endpoint_clears_total{reason="api"}');
  }, 40_000);
});
