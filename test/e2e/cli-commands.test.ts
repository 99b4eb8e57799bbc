import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, runCli, spawnCli, type CliRun } from '../support/cli.js';
import { freePort } from '../support/redis-server.js';
import { waitFor } from '../support/zmq.js';

/** Issue 17, bug 8 (help, bare command, SIGHUP, score's address) and the client commands, on the real CLI process. */
describe('kv-indexer CLI: help and usage', () => {
  it('--help prints the usage and exits 0', async () => {
    const r = await runCli(['--help']);
    expect([r.code, r.signal]).toEqual([0, null]);
    expect(r.stdout).toMatch(/^usage: kv-indexer <command> \[options\]/);
    expect(r.stdout).toContain('  health     ask a running indexer');
    expect(r.stderr).toBe('');
  });

  it('serve --help prints the serve usage and exits 0 (it used to crash with a stack trace)', async () => {
    const r = await runCli(['serve', '--help']);
    expect([r.code, r.signal]).toEqual([0, null]);
    expect(r.stdout).toMatch(/^usage: kv-indexer serve \[--config FILE\]/);
    expect(r.stderr).toBe('');
  });

  it('a bare kv-indexer prints the usage on stderr and exits 2 instead of serving on 0.0.0.0', async () => {
    const r = await runCli([], {}, 15_000);
    expect([r.code, r.signal]).toEqual([2, null]);
    expect(r.stderr).toMatch(/^usage: kv-indexer <command> \[options\]/);
    expect(r.stdout).toBe(''); // no "kv-indexer started" log line
  });
});

// The served indexer as one process, and as a primary with two serving processes (api.processes): the clients and
// the signal see the same service.
describe.each([{ processes: 1 }, { processes: 2 }])(
  'kv-indexer CLI: client commands against a served indexer (api.processes $processes), then SIGHUP',
  ({ processes }) => {
    let server: CliRun;
    let grpcPort: number;
    let metricsPort: number;
    let dir: string;
    /** The server's own setting, as an operator's shell would have it exported: the clients must follow it. */
    let env: NodeJS.ProcessEnv;

    beforeAll(async () => {
      grpcPort = await freePort();
      metricsPort = await freePort();
      env = {
        KV_INDEXER_GRPC_ADDRESS: `0.0.0.0:${grpcPort}`,
        KV_INDEXER_METRICS_HOST: '0.0.0.0',
        KV_INDEXER_METRICS_PORT: String(metricsPort),
        KV_INDEXER_API_PROCESSES: String(processes),
      };
      dir = mkdtempSync(join(tmpdir(), 'kvi-cli-'));
      server = spawnCli(['serve', '--set', 'zmq.addresses=[]'], env);
      await waitFor(() => server.logs.some((l) => l.msg === 'API serving'), 'the service to start', 20_000);
    });
    afterAll(() => {
      if (server.child.exitCode === null) server.child.kill('SIGKILL');
    });

    it('health: SERVING, exit 0 (address from KV_INDEXER_GRPC_ADDRESS, wildcard host → loopback)', async () => {
      const r = await runCli(['health'], env);
      expect([r.code, r.stderr]).toEqual([0, '']);
      expect(JSON.parse(r.stdout)).toEqual({ service: '', status: 'SERVING' });
      const readiness = await runCli(['health', '--service', 'readiness', '--address', `127.0.0.1:${grpcPort}`]);
      expect(JSON.parse(readiness.stdout)).toEqual({ service: 'readiness', status: 'SERVING' });
    });

    it('health --http (the container HEALTHCHECK): /healthz of the metrics listener the environment configures', async () => {
      const r = await runCli(['health', '--http'], env);
      expect([r.code, JSON.parse(r.stdout)]).toEqual([
        0,
        { url: `http://127.0.0.1:${metricsPort}/healthz`, status: 200, ready: true },
      ]);
      const dead = await freePort();
      const off = await runCli(['health', '--http', '--timeout', '1000'], {
        ...env,
        KV_INDEXER_METRICS_PORT: String(dead),
      });
      expect(off.code).toBe(1);
      expect(off.stderr).toMatch(new RegExp(`^health \\(http://127\\.0\\.0\\.1:${dead}/healthz\\): fetch failed`));
    });

    it('npx kv-indexer works from the clone (bin/kv-indexer.mjs runs the sources through tsx when there is no build)', async () => {
      const { spawnSync } = await import('node:child_process');
      const r = spawnSync('npx', ['--offline', 'kv-indexer', 'health'], {
        cwd: REPO,
        env: { ...process.env, ...env },
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect([r.status, r.stdout.trim()]).toEqual([0, '{"service":"","status":"SERVING"}']);
    }, 70_000);

    it('health against nothing: exit 1 with the gRPC status on stderr', async () => {
      const dead = await freePort();
      const r = await runCli(['health', '--address', `127.0.0.1:${dead}`, '--timeout', '1000']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^health \\(127\\.0\\.0\\.1:${dead}\\): (UNAVAILABLE|DEADLINE_EXCEEDED): `));
    });

    it('info --stats, endpoints and lookup print the RPC answers as JSON', async () => {
      const info = await runCli(['info', '--stats'], env);
      expect(info.code).toBe(0);
      const parsed = JSON.parse(info.stdout) as {
        backend: string;
        fingerprint: { blockSize: number };
        stats: { indexEntries: string };
      };
      expect([parsed.backend, parsed.fingerprint.blockSize, parsed.stats.indexEntries]).toEqual(['memory', 16, '0']);
      const endpoints = await runCli(['endpoints'], env);
      expect([endpoints.code, JSON.parse(endpoints.stdout)]).toEqual([0, { endpoints: [] }]);
      const lookup = await runCli(['lookup', '1,0x2', '3', '--candidates', '10.0.0.1:8000'], env);
      expect(lookup.code).toBe(0);
      expect(JSON.parse(lookup.stdout)).toMatchObject({
        totalBlocks: 3,
        scores: [{ endpoint: '10.0.0.1:8000', matchedBlocks: 0 }],
      });
      const bad = await runCli(['lookup', 'x12'], env);
      expect([bad.code, bad.stderr.trim()]).toEqual([2, 'lookup: key "x12" is not a uint64']);
    }, 60_000);

    it('score follows KV_INDEXER_GRPC_ADDRESS (it used to call localhost:50051 whatever the environment)', async () => {
      const request = join(dir, 'request.json');
      writeFileSync(
        request,
        JSON.stringify({
          model: 'm',
          prompt_token_ids: Array.from({ length: 40 }, (_, i) => i + 1),
          candidates: ['10.0.0.1:8000'],
        }),
      );
      const r = await runCli(['score', request], env);
      expect([r.code, r.stderr]).toEqual([0, '']);
      expect(r.stdout.split('\n')[0]).toMatch(/^40 tokens, 2 blocks/);
    });

    it('SIGHUP logs a line and shuts down cleanly (exit 0); the configuration is not reloaded', async () => {
      server.child.kill('SIGHUP');
      const { code, signal } = await server.exit;
      expect([code, signal]).toEqual([0, null]);
      const line = server.logs.find((l) => l.signal === 'SIGHUP');
      expect(line).toMatchObject({
        msg: 'shutting down: health NOT_SERVING, draining gRPC calls, then closing sockets',
        note: 'SIGHUP does not reload the configuration: restart to apply changes',
      });
      expect(server.logs.at(-1)?.msg).toBe('stopped');
    });
  },
);
