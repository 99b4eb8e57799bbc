import { credentials, status } from '@grpc/grpc-js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type RunningApi } from '../../src/service/start-api.js';
import { startService, type RunningService } from '../../src/service/start-service.js';
import { ConfigError, ConfigSchema } from '../../src/ops/index.js';
import { grpcClient } from '../support/grpc-client.js';
import { makeTestPki, type TestPki } from '../support/tls.js';

const TOKEN = 'a-very-secret-admin-token-0123456789';
const PROTO = 'kvindexer/v1/kvindexer.proto';
const SERVICE = 'kvindexer.v1.KvIndexer';

// Both servers of the gRPC address: the lean HTTP/2 server (default, node:tls with ALPN h2) and grpc-js.
describe.each([true, false])('api.leanHttp2=%s', (leanHttp2) => {
  describe('gRPC over mutual TLS, with a bearer token for admin RPCs', () => {
    let pki: TestPki;
    let service: RunningService;
    let api: RunningApi;
    let address: string;
    const logged: string[] = [];

    beforeAll(async () => {
      pki = makeTestPki();
      const tokenFile = join(pki.dir, 'admin-token');
      writeFileSync(tokenFile, `${TOKEN}\n`);
      const config = ConfigSchema.parse({
        zmq: { addresses: ['tcp://127.0.0.1:*'] },
        api: {
          grpcAddress: '127.0.0.1:0',
          tlsCertFile: pki.serverCert,
          tlsKeyFile: pki.serverKey,
          tlsClientCaFile: pki.caCert,
          adminTokenFile: tokenFile,
          leanHttp2,
        },
        metrics: { host: '127.0.0.1', port: 0 },
        log: { level: 'trace', statsIntervalSeconds: 0 },
      });
      const sink = new Writable({ write: (chunk, _e, done) => (logged.push(String(chunk)), done()) });
      const log = pino({ level: 'trace' }, sink);
      service = await startService(config, log);
      api = await startApi(service, config, log);
      address = `localhost:${api.grpcPort}`;
    }, 30_000);

    afterAll(async () => {
      await api?.stop();
      await service?.stop();
    });

    const mtls = () => credentials.createSsl(pki.read(pki.caCert), pki.read(pki.clientKey), pki.read(pki.clientCert));

    it('serves a client that presents a certificate signed by the configured CA', async () => {
      const kv = grpcClient(address, PROTO, SERVICE, mtls());
      try {
        expect((await kv.call('Score', { model: 'm', tokens: { tokenIds: [1, 2] } })).totalBlocks).toBe(0);
      } finally {
        kv.close();
      }
    });

    it('refuses plaintext clients and TLS clients without a certificate', async () => {
      for (const creds of [credentials.createInsecure(), credentials.createSsl(pki.read(pki.caCert))]) {
        const kv = grpcClient(address, PROTO, SERVICE, creds);
        try {
          const err = await kv.call('GetInfo', {}, 3_000).catch((e) => e);
          expect(err.code).toBe(status.UNAVAILABLE);
        } finally {
          kv.close();
        }
      }
    });

    it('requires the admin token for endpoint changes, not for reads', async () => {
      const anonymous = grpcClient(address, PROTO, SERVICE, mtls());
      const wrong = grpcClient(address, PROTO, SERVICE, mtls(), { authorization: 'Bearer not-the-token' });
      const admin = grpcClient(address, PROTO, SERVICE, mtls(), { authorization: `Bearer ${TOKEN}` });
      try {
        for (const client of [anonymous, wrong]) {
          const err = await client.call('ClearEndpoint', { endpoint: '10.0.0.1:8000' }).catch((e) => e);
          expect([err.code, err.details]).toEqual([
            status.UNAUTHENTICATED,
            'admin RPCs need the header authorization: Bearer <token>',
          ]);
        }
        expect(await admin.call('ClearEndpoint', { endpoint: '10.0.0.1:8000' })).toEqual({ clearedEntries: '0' });
        expect((await anonymous.call('GetInfo', {})).backend).toBe('memory');
      } finally {
        anonymous.close();
        wrong.close();
        admin.close();
      }
    });

    it('never logs the token', () => {
      expect(logged.length).toBeGreaterThan(0);
      expect(logged.join('')).not.toContain(TOKEN);
    });

    it('fails the start with a clear error for unreadable or mismatched TLS settings', async () => {
      const base = {
        zmq: { addresses: ['tcp://127.0.0.1:*'] },
        metrics: { host: '127.0.0.1', port: 0 },
        log: { level: 'silent', statsIntervalSeconds: 0 },
      };
      const log = pino({ level: 'silent' });
      const onlyCert = ConfigSchema.parse({
        ...base,
        api: { grpcAddress: '127.0.0.1:0', tlsCertFile: pki.serverCert },
      });
      await expect(startApi(service, onlyCert, log)).rejects.toThrow(
        new ConfigError('api.tlsCertFile and api.tlsKeyFile go together'),
      );
      const missing = ConfigSchema.parse({
        ...base,
        api: { grpcAddress: '127.0.0.1:0', adminTokenFile: '/nonexistent/token' },
      });
      await expect(startApi(service, missing, log)).rejects.toThrow(
        /api.adminTokenFile: cannot read \/nonexistent\/token/,
      );
    });
  });
});
