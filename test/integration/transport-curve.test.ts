import { encode } from '@msgpack/msgpack';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { capability, curveKeyPair } from 'zeromq';
import { readCurveClientKeys } from '../../src/service/curve-keys.js';
import { startService, type RunningService } from '../../src/service/start-service.js';
import { SimPublisher } from '../../src/sim/publisher/publisher.js';
import { MemoryIndex } from '../../src/index/index.js';
import { ConfigError, ConfigSchema } from '../../src/ops/index.js';
import { tokenRange, waitFor } from '../support/zmq.js';

const MODEL = 'Qwen/Qwen3-8B';
const ENDPOINT = '10.0.0.7:8000';
const dir = mkdtempSync(join(tmpdir(), 'kvi-curve-'));
const server = curveKeyPair();
const client = curveKeyPair();
const stranger = curveKeyPair();

/** Writes a key file the way a mounted Secret looks (trailing newline). */
function keyFile(name: string, key: string): string {
  const path = join(dir, name);
  writeFileSync(path, `${key}\n`);
  return path;
}

const files = {
  serverPublic: keyFile('server.pub', server.publicKey),
  clientPublic: keyFile('client.pub', client.publicKey),
  clientSecret: keyFile('client.key', client.secretKey),
  strangerPublic: keyFile('stranger.pub', stranger.publicKey),
  garbage: keyFile('garbage.key', 'not-a-key'),
};

const batch = (events: unknown[]) => encode([1_763_700_000, events, null], { useBigInt64: true });
const chain = [['BlockStored', [1n, 2n, 3n, 4n], null, tokenRange(64), 16, null, null]];

/** Resident index entries (the memory backend answers synchronously). */
const entries = (service: RunningService) => (service.index as MemoryIndex).statsSync().entries;

/** Every log line of every service started here, as written (pino JSON). */
const logLines: string[] = [];
const running: { service: RunningService; pub: SimPublisher }[] = [];

/** A CURVE-server publisher (PUB + plaintext replay ROUTER) and the service connected to it with `serverKeyFile`. */
async function start(options: { serverKeyFile: string; publisherCurve: boolean }) {
  const pub = new SimPublisher({
    topic: `kv@${ENDPOINT}@${MODEL}`,
    endpoint: 'tcp://127.0.0.1:*',
    replayEndpoint: 'tcp://127.0.0.1:*',
    curveSecretKey: options.publisherCurve ? server.secretKey : null,
  });
  await pub.start();
  const config = ConfigSchema.parse({
    zmq: {
      addresses: [],
      curveServerPublicKeyFile: options.serverKeyFile,
      curvePublicKeyFile: files.clientPublic,
      curveSecretKeyFile: files.clientSecret,
    },
    endpoints: { static: [`${pub.pubAddress};replay=${pub.replayAddress}`] },
    log: { level: 'trace', statsIntervalSeconds: 0 },
  });
  const log = pino({ level: 'trace' }, { write: (line: string) => void logLines.push(line) });
  const service = await startService(config, log);
  running.push({ service, pub });
  return { service, pub };
}

afterEach(async () => {
  for (const { service, pub } of running.splice(0)) {
    await service.stop();
    await pub.close();
  }
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  // Whatever happened above (start, handshakes, failures, stop), the client's secret key never reached the logs.
  expect(logLines.length).toBeGreaterThan(0);
  expect(logLines.filter((l) => l.includes(client.secretKey))).toEqual([]);
});

describe('ZMQ CURVE for connect-mode endpoints (libzmq of the zeromq package)', () => {
  it('is built with CURVE', () => {
    expect(capability.curve).toBe(true);
  });

  it('with the publisher’s public key: the handshake succeeds and events are indexed (gap replay over plaintext)', async () => {
    const { service, pub } = await start({ serverKeyFile: files.serverPublic, publisherCurve: true });
    // Empty batches until one arrives (the subscription takes a moment), then the chain.
    for (let i = 0; i < 400 && service.pipeline.counters.messages === 0; i++) {
      await pub.publish(batch([]));
      await new Promise((r) => setTimeout(r, 10));
    }
    await pub.publish(batch(chain));
    await waitFor(() => entries(service) === 4, 'the chain to be indexed');
    const [endpoint] = service.transport.listEndpoints();
    expect([endpoint.identity, endpoint.state, endpoint.lastSeq]).toEqual([ENDPOINT, 'live', pub.seq - 1n]);
    expect(service.transport.handshakeFailures).toBe(0);
    const connected = logLines.map((l) => JSON.parse(l)).find((l) => l.msg === 'connected to endpoint');
    expect(connected.curve).toBe(true);
  });

  it('with a wrong server key: nothing is received, each failed handshake is counted and the first is logged', async () => {
    const { service, pub } = await start({ serverKeyFile: files.strangerPublic, publisherCurve: true });
    // Publish all along while ZMQ retries the connection: three failed handshakes, no message.
    await waitFor(
      () => {
        void pub.publish(batch(chain));
        return service.transport.handshakeFailures >= 3;
      },
      'three failed handshakes',
      15_000,
    );
    expect(service.pipeline.counters.messages).toBe(0);
    expect(entries(service)).toBe(0);
    expect(service.transport.listEndpoints()).toEqual([]);
    const warnings = logLines
      .map((l) => JSON.parse(l))
      .filter((l) => l.level === 40 && String(l.msg).startsWith('ZMQ handshake with the publisher failed'));
    expect(warnings.map((w) => w.endpoint)).toEqual([pub.pubAddress]);
  });

  it('against a plaintext publisher (vLLM itself): the handshake fails (a protocol error libzmq does not retry), nothing is received', async () => {
    const { service, pub } = await start({ serverKeyFile: files.serverPublic, publisherCurve: false });
    await waitFor(
      () => {
        void pub.publish(batch(chain));
        return service.transport.handshakeFailures >= 1;
      },
      'a failed handshake',
      15_000,
    );
    expect(service.transport.handshakeFailures).toBe(1);
    expect(service.pipeline.counters.messages).toBe(0);
    expect(entries(service)).toBe(0);
  });

  it('reads keys from files: all three or none, Z85 only, a secret file must not hold a public key; errors never show content', () => {
    const zmq = ConfigSchema.parse({}).zmq;
    expect(readCurveClientKeys(zmq)).toBeNull();
    const keys = {
      curveServerPublicKeyFile: files.serverPublic,
      curvePublicKeyFile: files.clientPublic,
      curveSecretKeyFile: files.clientSecret,
    };
    expect(readCurveClientKeys({ ...zmq, ...keys })).toEqual({
      serverPublicKey: server.publicKey,
      publicKey: client.publicKey,
      secretKey: client.secretKey,
    });
    const error = (more: Partial<typeof keys>) => {
      try {
        readCurveClientKeys({ ...zmq, ...keys, ...more });
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
      }
      return 'no error';
    };
    expect(error({ curveSecretKeyFile: '' })).toBe(
      'zmq.curveServerPublicKeyFile, zmq.curvePublicKeyFile and zmq.curveSecretKeyFile go together',
    );
    expect(error({ curveSecretKeyFile: files.garbage })).toBe(
      `zmq.curveSecretKeyFile: ${files.garbage} does not hold a Z85 CURVE key (40 characters)`,
    );
    expect(error({ curveSecretKeyFile: join(dir, 'missing.key') })).toBe(
      `zmq.curveSecretKeyFile: cannot read ${join(dir, 'missing.key')}: ENOENT`,
    );
    expect(error({ curveSecretKeyFile: files.clientPublic })).toBe(
      'zmq.curveSecretKeyFile holds a public key: it must hold the secret key of the zmq.curvePublicKeyFile pair',
    );
  });
});
