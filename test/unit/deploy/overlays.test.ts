import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { backendFollowers } from '../../../src/service/start-api.js';
import { ENV_PATHS, loadConfig } from '../../../src/ops/config.js';
import { PromptService } from '../../../src/prompt/index.js';
import { RegistryConfigSchema } from '../../../src/prompt/model-config.js';
import { find, render, type K8sObject } from '../../support/kustomize.js';

const root = new URL('../../../', import.meta.url);
const overlay = (name: string) => render(fileURLToPath(new URL(`deploy/overlays/${name}`, root)));
const MiB = 1024 * 1024;

/**
 * Bytes per resident (block, endpoint) entry with the engine-key bridge, as measured by the ingest bench suite
 * (bench/results/ingest.json `bytesPerBlockWithBridge`: index + bridge after 2M stored blocks; at 10M the index part
 * is smaller, bench/results/index-memory.json, so this is conservative). Runtime and per-tokenizer-worker figures are
 * those of docs/operations.md and docs/models.md (Qwen: ~120 MB per worker, rounded up).
 */
const ENTRY_BYTES = (
  JSON.parse(readFileSync(new URL('bench/results/ingest.json', root), 'utf8')) as {
    figures: { bytesPerBlockWithBridge: { value: number } };
  }
).figures.bytesPerBlockWithBridge.value;
const RUNTIME_BYTES = 150 * MiB;
const WORKER_BYTES = 150 * MiB;
/** Share of the limit the planned bytes may use: the rest is garbage-collector headroom. */
const HEADROOM = 0.8;

function quantity(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi)?$/.exec(q);
  if (!m) throw new Error(`unsupported quantity ${q}`);
  return Number(m[1]) * { Ki: 1024, Mi: MiB, Gi: 1024 * MiB, '': 1 }[m[2] ?? '']!;
}

function indexer(objects: K8sObject[]) {
  const deployment = find(objects, 'Deployment', 'kv-indexer');
  const pod = deployment.spec.template;
  const container = pod.spec.containers[0];
  const data = find(objects, 'ConfigMap', 'kv-indexer').data as Record<string, string>;
  for (const key of Object.keys(data)) expect(Object.keys(ENV_PATHS)).toContain(key);
  const config = loadConfig(data);
  const volumes = new Map<string, any>(pod.spec.volumes.map((v: { name: string }) => [v.name, v]));
  /** The volume mounted at the directory holding `file`, and the file's path inside it. */
  const mountOf = (file: string) => {
    const m = container.volumeMounts.find((vm: { mountPath: string }) => file.startsWith(`${vm.mountPath}/`));
    expect(m, `a volume mounted over ${file}`).toBeDefined();
    return { volume: volumes.get(m.name), rest: file.slice(m.mountPath.length + 1), mount: m };
  };
  return { deployment, pod, container, config, volumes, mountOf };
}

const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

describe.each(['standalone', 'redis-shared'])('the rendered %s overlay', (name) => {
  const objects = overlay(name);
  const { deployment, pod, container, config, volumes, mountOf } = indexer(objects);

  it('mounts only volumes it declares, each once', () => {
    expect(volumes.size).toBe(pod.spec.volumes.length);
    for (const vm of container.volumeMounts) expect(volumes.has(vm.name), vm.name).toBe(true);
  });

  it('sizes index.maxEntries so that the index evicts before the pod is OOM-killed', () => {
    const limit = quantity(container.resources.limits.memory);
    const registry = parse(find(objects, 'ConfigMap', 'kv-indexer-models').data['registry.yaml']);
    const workers = registry.workers as number;
    expect(workers).toBeGreaterThanOrEqual(1); // explicit: os.availableParallelism() in a pod is the node's cores
    const entries = config.index.backend === 'memory' ? config.index.maxEntries : 0;
    expect(ENTRY_BYTES).toBeGreaterThan(90); // the figure includes the bridge (the index alone is ~50 B)
    const planned = entries * ENTRY_BYTES + RUNTIME_BYTES + workers * WORKER_BYTES;
    expect(planned).toBeLessThanOrEqual(HEADROOM * limit);
    if (config.index.backend === 'memory') expect(planned).toBeGreaterThan(0.6 * limit); // and does not waste half of it
    expect(quantity(container.resources.requests.memory)).toBeLessThanOrEqual(limit);
  });

  it('wires a model registry and the volume of its tokenizer files, so chat works', async () => {
    const registryFile = mountOf(config.models.registry);
    expect(registryFile.volume.configMap.name).toBe('kv-indexer-models');
    const text = find(objects, 'ConfigMap', registryFile.volume.configMap.name).data[registryFile.rest];
    const registry = RegistryConfigSchema.parse(parse(text));
    for (const model of registry.models) {
      const dir = mountOf(`${model.dir}/tokenizer.json`);
      expect(dir.mount.readOnly).toBe(true);
      const claim = find(objects, 'PersistentVolumeClaim', dir.volume.persistentVolumeClaim.claimName);
      expect(claim.spec.accessModes).toContain(
        deployment.spec.replicas > 1 ? 'ReadOnlyMany' : claim.spec.accessModes[0],
      );
    }
    // The same registry, its directories pointed at the fixtures' copies of those tokenizers, renders a chat.
    const local = {
      ...registry,
      workers: 1,
      models: registry.models.map((m) => ({
        ...m,
        dir: fileURLToPath(new URL(`fixtures/models/${m.dir.split('/').pop()}`, root)),
      })),
    };
    const service = await PromptService.create({ registry: local, keys: config.keys });
    try {
      const p = await service.prepare({
        model: registry.models[0].name,
        messages: [{ role: 'user', content: 'Hello' }],
      });
      expect(p.text).toContain('Hello');
      expect(p.tokenIds.length).toBeGreaterThan(3);
    } finally {
      await service.close();
    }
  }, 60_000);

  it('mounts the admin token Secret where api.adminTokenFile points', () => {
    const token = mountOf(config.api.adminTokenFile);
    expect(token.volume.secret.secretName).toBe('kv-indexer-admin');
    expect(token.volume.secret.items).toEqual([{ key: 'token', path: token.rest }]);
  });

  it('has a NetworkPolicy admitting gRPC and ZMQ (and metrics) to the indexer pods only from labelled peers', () => {
    const policy = find(objects, 'NetworkPolicy', 'kv-indexer');
    expect(matches(policy.spec.podSelector.matchLabels, pod.metadata.labels)).toBe(true);
    const portNames = container.ports.map((p: { name: string }) => p.name);
    const admitted = policy.spec.ingress.flatMap((r: { ports: { port: string }[] }) => r.ports.map((p) => p.port));
    expect(admitted.sort()).toEqual(['grpc', 'metrics', 'zmq']);
    expect(portNames).toEqual(expect.arrayContaining(admitted));
    // Peers by matchExpressions: kustomize's labels transformer would add the indexer's own labels to matchLabels.
    for (const rule of policy.spec.ingress)
      for (const peer of rule.from) expect(Object.keys(peer)).not.toContain('matchLabels');
    for (const rule of policy.spec.ingress)
      for (const peer of rule.from) expect((peer.podSelector ?? peer.namespaceSelector).matchLabels).toBeUndefined();
  });

  it('has PodDisruptionBudgets only where they protect something', () => {
    const pdbs = objects.filter((o) => o.kind === 'PodDisruptionBudget');
    for (const pdb of pdbs) {
      expect(matches(pdb.spec.selector.matchLabels, pod.metadata.labels)).toBe(true);
      expect(deployment.spec.replicas - pdb.spec.maxUnavailable).toBeGreaterThanOrEqual(1);
    }
    expect(pdbs.length).toBe(deployment.spec.replicas > 1 ? 1 : 0);
  });

  it('probes readiness that a Redis outage does not take away under fail-open (docs/operations.md)', () => {
    expect(container.readinessProbe.grpc.service).toBe('readiness');
    expect(container.livenessProbe.grpc.service).toBe('liveness');
    expect(config.api.failOpen).toBe(true);
    expect(backendFollowers(config.api.failOpen)).not.toContain('readiness');
  });

  it('repairs bind-mode gaps (and rollouts) from the vLLM replay port of the example', () => {
    expect(config.zmq.mode).toBe('bind');
    const snippet = readFileSync(new URL('deploy/examples/vllm-deployment-snippet.yaml', root), 'utf8');
    const replay = /"replay_endpoint":"tcp:\/\/\*:(\d+)"/.exec(snippet);
    expect(Number(replay?.[1])).toBe(config.replay.bindPort);
    expect(readFileSync(new URL('docs/operations.md', root), 'utf8')).toContain('## Rollouts in bind mode');
  });
});

describe('the rendered redis-shared overlay: Redis', () => {
  const objects = overlay('redis-shared');
  const { pod, config } = indexer(objects);
  const redis = find(objects, 'Deployment', 'kv-indexer-redis').spec.template;
  const args: string[] = redis.spec.containers[0].args;
  const arg = (flag: string) => args[args.indexOf(flag) + 1];

  it('cannot evict the endpoint registry: a volatile policy with TTLs on block keys only', () => {
    expect(config.index.backend).toBe('redis');
    expect(arg('--maxmemory-policy')).toBe('volatile-lru');
    expect(config.index.redisEntryTtlMs).toBeGreaterThan(0);
    expect(quantity(arg('--maxmemory').replace(/gb$/, 'Gi'))).toBeLessThan(
      quantity(redis.spec.containers[0].resources.limits.memory),
    );
  });

  it('admits only the indexer pods to Redis', () => {
    const policy = find(objects, 'NetworkPolicy', 'kv-indexer-redis');
    expect(matches(policy.spec.podSelector.matchLabels, redis.metadata.labels)).toBe(true);
    const from = policy.spec.ingress[0].from[0].podSelector.matchLabels;
    expect(matches(from, pod.metadata.labels)).toBe(true);
    expect(matches(from, redis.metadata.labels)).toBe(false);
  });
});
