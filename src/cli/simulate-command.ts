import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { POLICIES, type PolicyName } from '../sim/fleet/policies.js';
import { renderMarkdown, renderSvg, renderText, type ReportRow, type SimulationReport } from '../sim/fleet/report.js';
import { DEFAULT_SIMULATION, runPolicy, type SimulationOptions } from '../sim/fleet/run.js';
import { generateWorkload, WORKLOADS, type WorkloadName } from '../sim/fleet/workloads.js';
import { EmbeddedIndexer } from '../sim/fleet/embedded-indexer.js';

const USAGE = `usage: kv-indexer simulate [options]

Runs a simulated vLLM fleet against a real indexer started in this process: every endpoint keeps an LRU prefix
cache and publishes its KV events over ZMQ; each request is routed by a policy (precise = this service's gRPC
Score) and the run reports the KV-cache hit rate, prefill tokens, an estimated TTFT and load imbalance per policy.
Deterministic for a given seed. Details: docs/simulator.md.

options:
  --workload LIST        ${WORKLOADS.join(', ')} (default: all)
  --policy LIST          ${POLICIES.join(', ')} (default: all)
  --requests N           requests per workload (default 2000)
  --rate R               mean arrivals per second over the fleet (default 20)
  --endpoints N          simulated endpoints (default 8)
  --gpu-blocks N         prefix-cache blocks per endpoint (default 2048, 16 tokens each)
  --prefill-rate T       prefill tokens per second per endpoint (default 10000)
  --load-guard S         cache-aware policies only consider endpoints within S seconds of queued prefill of the
                         least loaded one (default 0.5)
  --router-replicas LIST approximate policy run with each of these router replica counts (default 1)
  --signed-url-share F   share of image chats sending their image as a signed URL unique to the chat (default 0.5)
  --seed N               workload and policy seed (default 42)
  --out DIR              also write simulate.json, simulate.md and simulate.svg there
  --quick                a small run: 4 endpoints, 300 requests per workload`;

function positiveNumber(name: string, raw: string | undefined, fallback: number, integer = false): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v)))
    throw new Error(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got "${raw}"`);
  return v;
}

function list<T extends string>(name: string, raw: string | undefined, allowed: readonly T[]): T[] {
  if (raw === undefined) return [...allowed];
  const items = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const item of items)
    if (!allowed.includes(item as T)) throw new Error(`--${name}: unknown "${item}" (one of ${allowed.join(', ')})`);
  if (items.length === 0) throw new Error(`--${name} is empty`);
  return items as T[];
}

/** `kv-indexer simulate`: the fleet simulator (docs/simulator.md). */
export async function simulateCommand(argv: string[]): Promise<number> {
  let settings;
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        workload: { type: 'string' },
        policy: { type: 'string' },
        requests: { type: 'string' },
        rate: { type: 'string' },
        endpoints: { type: 'string' },
        'gpu-blocks': { type: 'string' },
        'prefill-rate': { type: 'string' },
        'load-guard': { type: 'string' },
        'router-replicas': { type: 'string' },
        seed: { type: 'string' },
        'signed-url-share': { type: 'string' },
        out: { type: 'string' },
        quick: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    const quick = values.quick ?? false;
    const loadGuard =
      values['load-guard'] === undefined ? DEFAULT_SIMULATION.loadGuardSeconds : Number(values['load-guard']);
    if (!Number.isFinite(loadGuard) || loadGuard < 0)
      throw new Error(`--load-guard must be a number ≥ 0, got "${values['load-guard']}"`);
    const replicas = (values['router-replicas'] ?? '1')
      .split(',')
      .map((r) => positiveNumber('router-replicas', r.trim(), 1, true));
    const seed = values.seed === undefined ? DEFAULT_SIMULATION.seed : Number(values.seed);
    if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed must be an integer ≥ 0, got "${values.seed}"`);
    const signedUrlShare = values['signed-url-share'] === undefined ? 0.5 : Number(values['signed-url-share']);
    if (!(signedUrlShare >= 0 && signedUrlShare <= 1))
      throw new Error(`--signed-url-share must be in [0, 1], got "${values['signed-url-share']}"`);
    settings = {
      signedUrlShare,
      workloads: list<WorkloadName>('workload', values.workload, WORKLOADS),
      policies: list<PolicyName>('policy', values.policy, POLICIES),
      requests: positiveNumber('requests', values.requests, quick ? 300 : 2000, true),
      rate: positiveNumber('rate', values.rate, 20),
      replicas,
      out: values.out ?? null,
      options: {
        ...DEFAULT_SIMULATION,
        seed,
        loadGuardSeconds: loadGuard,
        fleet: {
          ...DEFAULT_SIMULATION.fleet,
          endpoints: positiveNumber(
            'endpoints',
            values.endpoints,
            quick ? 4 : DEFAULT_SIMULATION.fleet.endpoints,
            true,
          ),
          gpuBlocks: positiveNumber('gpu-blocks', values['gpu-blocks'], DEFAULT_SIMULATION.fleet.gpuBlocks, true),
        },
        cost: {
          ...DEFAULT_SIMULATION.cost,
          prefillTokensPerSecond: positiveNumber(
            'prefill-rate',
            values['prefill-rate'],
            DEFAULT_SIMULATION.cost.prefillTokensPerSecond,
          ),
        },
      } satisfies SimulationOptions,
    };
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }

  const report: SimulationReport = {
    date: new Date().toISOString(),
    seed: settings.options.seed,
    parameters: {
      requests: settings.requests,
      rate: settings.rate,
      signedUrlShare: settings.signedUrlShare,
      fleet: settings.options.fleet,
      cost: settings.options.cost,
      loadGuardSeconds: settings.options.loadGuardSeconds,
      routerReplicas: settings.replicas,
      machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version },
    },
    workloads: [],
  };
  for (const workload of settings.workloads) {
    const requests = generateWorkload(workload, {
      seed: settings.options.seed,
      requests: settings.requests,
      rate: settings.rate,
      signedUrlShare: settings.signedUrlShare,
    });
    const rows: ReportRow[] = [];
    for (const policy of settings.policies) {
      const variants = policy === 'approximate' ? settings.replicas : [1];
      for (const routerReplicas of variants) {
        const started = Date.now();
        const result = await runPolicy(requests, policy, { ...settings.options, routerReplicas }, (blockSize, rate) =>
          EmbeddedIndexer.start(blockSize, rate),
        );
        const label =
          policy === 'approximate' && routerReplicas > 1 ? `approximate ×${routerReplicas} routers` : policy;
        rows.push({ label, ...result });
        process.stderr.write(`${workload} / ${label}: ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
      }
    }
    report.workloads.push({ workload, requests: requests.length, rows });
  }
  console.log(renderText(report));
  if (settings.out) {
    mkdirSync(settings.out, { recursive: true });
    writeFileSync(join(settings.out, 'simulate.json'), `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(join(settings.out, 'simulate.md'), `${renderMarkdown(report)}\n`);
    writeFileSync(join(settings.out, 'simulate.svg'), renderSvg(report));
    console.log(`\nwrote ${join(settings.out, 'simulate.{json,md,svg}')}`);
  }
  const inexact = report.workloads.flatMap((w) =>
    w.rows.filter((r) => !r.index.exact).map((r) => `${w.workload}/${r.label}: ${r.index.problems.join('; ')}`),
  );
  if (inexact.length > 0) {
    console.error(`the indexer's entries differ from the simulated caches:\n${inexact.join('\n')}`);
    return 1;
  }
  return 0;
}
