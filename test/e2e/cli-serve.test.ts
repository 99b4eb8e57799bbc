import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Publisher } from 'zeromq';
import { grpcClient } from '../support/grpc-client.js';
import { connectedPublisher, kvMessage, tokenRange, waitFor } from '../support/zmq.js';

const MODEL = 'Qwen/Qwen3-8B';
const tokens = tokenRange;
const msg = kvMessage;

/** The real CLI as `npm start` runs it (TypeScript through tsx instead of a build), on its embedded defaults. */
// One process, and a primary with two serving processes (api.processes): the same defaults, the same answers.
describe.each([{ processes: 1 }, { processes: 2 }])(
  'kv-indexer serve (spawned, default ports, api.processes $processes)',
  ({ processes }) => {
    let child: ChildProcess;
    const logs: Record<string, unknown>[] = [];
    let pub: Publisher;
    let exit: Promise<number | null>;

    beforeAll(async () => {
      child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve'], {
        cwd: new URL('../../', import.meta.url).pathname,
        env: { ...process.env, KV_INDEXER_STATS_INTERVAL_SECONDS: '0', KV_INDEXER_API_PROCESSES: String(processes) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      exit = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
      createInterface({ input: child.stdout! }).on('line', (line) => {
        try {
          logs.push(JSON.parse(line));
        } catch {
          logs.push({ msg: line });
        }
      });
      await waitFor(() => logs.some((l) => l.msg === 'API serving'), 'the service to start', 20_000);
      pub = await connectedPublisher('tcp://127.0.0.1:5557', msg('kv@10.9.9.9:1@probe', 0, [0, [], null]), () => true);
    });

    afterAll(async () => {
      pub?.close();
      if (child && child.exitCode === null) child.kill('SIGKILL');
    });

    it('boots with defaults, ingests published events and answers a Score', async () => {
      const info = logs.find((l) => l.msg === 'API serving') as { grpcPort: number; metricsPort: number };
      expect([info.grpcPort, info.metricsPort]).toEqual([50051, 9090]);
      const kv = grpcClient('127.0.0.1:50051', 'kvindexer/v1/kvindexer.proto', 'kvindexer.v1.KvIndexer');
      try {
        let matched = 0;
        // ZMQ may drop messages sent before the subscription propagates: republish until the block shows up.
        for (let seq = 0; matched === 0 && seq < 100; seq++) {
          await pub.send(
            msg(`kv@10.0.0.1:8000@${MODEL}`, seq, [
              1,
              [['BlockStored', [1n, 2n], null, tokens(32), 16, null, null]],
              null,
            ]),
          );
          await new Promise((r) => setTimeout(r, 50));
          const res = await kv.call('Score', {
            model: MODEL,
            tokens: { tokenIds: tokens(32) },
            candidates: ['10.0.0.1:8000'],
          });
          matched = res.scores[0].matchedBlocks;
        }
        expect(matched).toBe(2);
        const metrics = await (await fetch('http://127.0.0.1:9090/metrics')).text();
        // Every serving process holds the block: one series per process (`worker`) when there are several.
        const entries = metrics.split('\n').filter((l) => l.startsWith('kv_indexer_index_entries'));
        expect(entries).toEqual(
          processes === 1
            ? ['kv_indexer_index_entries 2']
            : Array.from({ length: processes }, (_, w) => `kv_indexer_index_entries{worker="${w}"} 2`),
        );
      } finally {
        kv.close();
      }
    });

    it('shuts down cleanly on SIGTERM', async () => {
      child.kill('SIGTERM');
      expect(await exit).toBe(0);
      expect(logs.map((l) => l.msg)).toContain('stopped');
    });
  },
);
