import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createPolicy } from '../../src/sim/fleet/policies.js';
import type { SimulationReport } from '../../src/sim/fleet/report.js';
import { EmbeddedIndexer } from '../../src/sim/fleet/embedded-indexer.js';
import { DEFAULT_SIMULATION, SimulatedFleet } from '../../src/sim/fleet/run.js';
import { generateWorkload } from '../../src/sim/fleet/workloads.js';
import { EndpointQueues } from '../../src/sim/fleet/cost-model.js';
import { blockExtras } from '../../src/keys/extras.js';
import { BlockHasher } from '../../src/keys/index.js';
import { runCli } from '../support/cli.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('fleet simulator against the real indexer', () => {
  it('routes by gRPC Score, and the index equals the simulated endpoints’ caches exactly after quiescence', async () => {
    const fleetOptions = { ...DEFAULT_SIMULATION.fleet, endpoints: 3, gpuBlocks: 256 };
    const indexer = await EmbeddedIndexer.start(fleetOptions.blockSize);
    const sim = new SimulatedFleet(indexer, fleetOptions);
    try {
      await sim.start();
      const requests = generateWorkload('mixed', { seed: 11, requests: 60, rate: 20 });
      const scores: Map<string, number>[] = [];
      const policy = createPolicy(
        'precise',
        { ...DEFAULT_SIMULATION, approximateCapacity: 1, approximate: { chunkChars: 64, maxChunks: 256 } },
        async (r, candidates) => {
          const m = await indexer.client.matchedBlocks(fleetOptions.model, r.prompt.tokens, r.prompt.items, candidates);
          scores.push(m);
          return m;
        },
      );
      const queues = new EndpointQueues(sim.endpoints);
      const hasher = new BlockHasher({
        blockSize: fleetOptions.blockSize,
        hashSeed: indexer.service.config.keys.hashSeed,
      });
      const requestKeyOf = new Map<bigint, bigint>();
      let checked = 0;
      for (const request of requests) {
        await sim.quiesce();
        const endpoint = await policy.choose({
          request,
          endpoints: sim.endpoints,
          backlog: (e) => queues.backlog(e, request.arrival),
          routedTo: () => 0,
        });
        // What Score said is what the engines hold: for every endpoint, the consecutive cached blocks of the prompt.
        for (const e of sim.endpoints)
          expect(scores.at(-1)!.get(e) ?? 0).toBe(sim.fleet.expectedMatch(e, request.prompt).matchedBlocks);
        checked += sim.endpoints.length;
        queues.dispatch(endpoint, request.arrival, request.prompt.tokens.length);
        // The test's own map from engine block to request key, from the served tokens and images.
        const served = {
          tokens: [...request.prompt.tokens, ...request.output],
          items: request.prompt.items,
          loraName: null,
        };
        const keys = hasher.keysFor(
          fleetOptions.model,
          served.tokens,
          blockExtras(served.items, served.tokens.length, fleetOptions.blockSize),
        );
        sim.fleet.ranks
          .get(endpoint)!
          .engine.blocksOf(served)
          .forEach((b, i) => requestKeyOf.set(b.key, keys[i]));
        await sim.serve(endpoint, request);
      }
      await sim.quiesce();
      expect(checked).toBe(180);

      let evicting = 0;
      for (const endpoint of sim.endpoints) {
        const engine = sim.fleet.ranks.get(endpoint)!.engine;
        expect(await indexer.service.index.endpointEntries(endpoint)).toEqual(
          engine.gpu.size > 0 ? { GPU: engine.gpu.size } : {},
        );
        for (const engineKey of engine.gpu.keys()) {
          const key = requestKeyOf.get(engineKey)!;
          expect(key).toBeTypeOf('bigint');
          const found = await indexer.service.index.lookup(BigUint64Array.of(key), { candidates: [endpoint] });
          expect(found.map((f) => [f.endpoint, f.matchedBlocks])).toEqual([[endpoint, 1]]);
        }
        if (engine.gpu.size === engine.gpu.capacity) evicting++;
      }
      // The caches were under pressure, so removals were exercised too.
      expect(evicting).toBeGreaterThan(0);
      const verdict = await sim.verifyIndex();
      expect(verdict).toEqual({
        exact: true,
        entries: verdict.engineBlocks,
        engineBlocks: verdict.engineBlocks,
        problems: [],
      });

      // The simulator's own check notices an index that lost one entry.
      const victim = sim.endpoints.find((e) => sim.fleet.ranks.get(e)!.engine.gpu.size > 0)!;
      const oneKey = requestKeyOf.get(sim.fleet.ranks.get(victim)!.engine.gpu.keys()[0])!;
      indexer.service.index.remove(victim, 'GPU', BigUint64Array.of(oneKey));
      const broken = await sim.verifyIndex();
      expect(broken.exact).toBe(false);
      expect(broken.problems).toEqual([
        `${victim}: index holds {"GPU":${sim.fleet.ranks.get(victim)!.engine.gpu.size - 1}}, engine ${sim.fleet.ranks.get(victim)!.engine.gpu.size} GPU blocks`,
        `${victim}: 1 resident blocks not in the index`,
      ]);
    } finally {
      await sim.close();
      await indexer.stop();
    }
  });

  it('`simulate` writes the same report for the same seed: table, JSON, Markdown and SVG', async () => {
    const run = async () => {
      const out = mkdtempSync(join(tmpdir(), 'simulate-'));
      dirs.push(out);
      const args = [
        '--workload',
        'image-chat',
        '--requests',
        '40',
        '--endpoints',
        '3',
        '--gpu-blocks',
        '512',
        '--router-replicas',
        '1,2',
        '--seed',
        '5',
        '--out',
        out,
      ];
      const cli = await runCli(['simulate', ...args], {}, 60_000);
      expect(cli.code).toBe(0);
      return {
        out,
        stdout: cli.stdout,
        report: JSON.parse(readFileSync(join(out, 'simulate.json'), 'utf8')) as SimulationReport,
      };
    };
    const first = await run();
    const second = await run();
    const strip = (r: SimulationReport) => ({ ...r, date: '' });
    expect(strip(second.report)).toEqual(strip(first.report));
    const rows = first.report.workloads[0].rows;
    expect(rows.map((r) => r.label)).toEqual([
      'precise',
      'cache+load',
      'load',
      'approximate',
      'approximate ×2 routers',
      'round-robin',
      'random',
      'least-loaded',
    ]);
    for (const r of rows) {
      expect(r.requests).toBe(40);
      expect(r.index.exact).toBe(true);
      expect(r.prefillTokens + r.cachedTokens).toBe(r.promptTokens);
      expect(r.requestsPerEndpoint.reduce((a, b) => a + b, 0)).toBe(40);
    }
    // Every policy saw the same requests.
    expect(new Set(rows.map((r) => r.promptTokens)).size).toBe(1);
    const svg = readFileSync(join(first.out, 'simulate.svg'), 'utf8');
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.match(/<rect x="[\d.]+" y="[\d.]+" width/g)?.length).toBe(2 * rows.length + rows.length);
    const md = readFileSync(join(first.out, 'simulate.md'), 'utf8').trim().split('\n');
    expect(md).toHaveLength(2 + rows.length);
    expect(first.stdout).toContain('image-chat (40 requests)');
  }, 120_000);

  it('`simulate` refuses bad options with a clear message and exit code 2', async () => {
    const refused = async (args: string[]) => {
      const run = await runCli(['simulate', ...args], {}, 60_000);
      return [run.code, run.stdout, run.stderr.split('\n')[0]];
    };
    // Three CLI processes at once: each pays tsx's start-up.
    expect(
      await Promise.all([
        refused(['--workload', 'chess']),
        refused(['--requests', '2.5']),
        refused(['--signed-url-share', '1.5']),
      ]),
    ).toEqual([
      [2, '', '--workload: unknown "chess" (one of multi-turn, long-doc, image-chat, hot-spot, mixed)'],
      [2, '', '--requests must be a positive integer, got "2.5"'],
      [2, '', '--signed-url-share must be in [0, 1], got "1.5"'],
    ]);
  }, 90_000);
});
