import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { SERVICE_NAMES } from '../../../src/service/start-api.js';
import { parseTopic } from '../../../src/events/wire/topic.js';
import { ConfigSchema, ENV_PATHS, loadConfig } from '../../../src/ops/config.js';
import { find, render } from '../../support/kustomize.js';

const root = new URL('../../../', import.meta.url);
const load = (path: string) => parse(readFileSync(new URL(path, root), 'utf8'));
const portOf = (address: string) => Number(address.slice(address.lastIndexOf(':') + 1));

describe('deploy/ manifests agree with the code', () => {
  const defaults = ConfigSchema.parse({});
  const deployment = load('deploy/base/deployment.yaml');
  const container = deployment.spec.template.spec.containers[0];
  const ports = Object.fromEntries(
    container.ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]),
  );

  it('exposes the ports the service listens on by default', () => {
    expect(ports).toEqual({
      grpc: portOf(defaults.api.grpcAddress),
      zmq: portOf(defaults.zmq.addresses[0]),
      metrics: defaults.metrics.port,
    });
    const service = load('deploy/base/service.yaml');
    for (const p of service.spec.ports) expect(ports[p.targetPort]).toBe(p.port);
  });

  it('probes the gRPC health service names the server registers', () => {
    for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
      expect(container[probe].grpc.port).toBe(ports.grpc);
      expect(SERVICE_NAMES).toContain(container[probe].grpc.service);
    }
    expect(container.readinessProbe.grpc.service).toBe('readiness');
    expect(container.livenessProbe.grpc.service).toBe('liveness');
  });

  it('configures only variables the service reads, with values it accepts', () => {
    const data = load('deploy/base/configmap.yaml').data as Record<string, string>;
    for (const key of Object.keys(data)) expect(Object.keys(ENV_PATHS)).toContain(key);
    const config = loadConfig(data);
    expect(config.keys).toEqual({ blockSize: 16, hashSeed: '' });
    expect(portOf(config.api.grpcAddress)).toBe(ports.grpc);
    expect(config.metrics.port).toBe(ports.metrics);
    expect(portOf(config.zmq.addresses[0])).toBe(ports.zmq);
  });

  it('lists resources that exist, in the base and the overlay', () => {
    for (const dir of ['deploy/base/', 'deploy/overlays/standalone/', 'deploy/overlays/redis-shared/']) {
      const k = load(`${dir}kustomization.yaml`);
      for (const r of k.resources) expect(existsSync(new URL(`${dir}${r}`, root))).toBe(true);
    }
  });

  it('the redis-shared overlay selects the Redis backend at a Service it defines, with several replicas', () => {
    const k = load('deploy/overlays/redis-shared/kustomization.yaml');
    expect(k.replicas).toEqual([{ name: 'kv-indexer', count: 3 }]);
    const patch = parse(k.patches.find((p: { target: { kind: string } }) => p.target.kind === 'ConfigMap').patch) as {
      path: string;
      value: string;
    }[];
    const data = Object.fromEntries(patch.map((op) => [op.path.replace('/data/', ''), op.value]));
    for (const key of Object.keys(data)) expect(Object.keys(ENV_PATHS)).toContain(key);
    const base = load('deploy/base/configmap.yaml').data as Record<string, string>;
    const config = loadConfig({ ...base, ...data });
    expect(config.index.backend).toBe('redis');
    const redis = parseAllDocuments(readFileSync(new URL('deploy/overlays/redis-shared/redis.yaml', root), 'utf8')).map(
      (d) => d.toJSON(),
    );
    const svc = redis.find((d) => d.kind === 'Service');
    expect(config.index.redisUrl).toBe(`redis://${svc.metadata.name}:${svc.spec.ports[0].port}`);
  });

  it('the redis-shared overlay authenticates: Redis requires the Secret password, every replica mounts it as the password file', () => {
    const objects = render(fileURLToPath(new URL('deploy/overlays/redis-shared', root)));
    const pod = find(objects, 'Deployment', 'kv-indexer').spec.template.spec;
    const config = loadConfig(find(objects, 'ConfigMap', 'kv-indexer').data);
    const volume = pod.volumes.find((v: { name: string }) => v.name === 'redis-auth');
    const mount = pod.containers[0].volumeMounts.find((m: { name: string }) => m.name === volume.name);
    expect(mount).toMatchObject({ name: volume.name, readOnly: true });
    // Appended to the base's volumes and mounts, which are kept (admin token, models).
    expect(pod.volumes.map((v: { name: string }) => v.name)).toEqual([
      'models-registry',
      'models',
      'admin-token',
      'redis-auth',
    ]);
    expect(config.index.redisPasswordFile).toBe(`${mount.mountPath}/${volume.secret.items[0].path}`);
    const server = find(objects, 'Deployment', 'kv-indexer-redis').spec.template.spec.containers[0];
    const env = server.env.find((e: { name: string }) => e.name === 'REDIS_PASSWORD');
    expect(env.valueFrom.secretKeyRef).toEqual({ name: volume.secret.secretName, key: volume.secret.items[0].key });
    expect(server.args.slice(server.args.indexOf('--requirepass'), server.args.indexOf('--requirepass') + 2)).toEqual([
      '--requirepass',
      '$(REDIS_PASSWORD)',
    ]);
  });

  it('the ServiceMonitor scrapes the metrics port by name', () => {
    const sm = load('deploy/monitoring/servicemonitor.yaml');
    expect(sm.spec.endpoints[0]).toMatchObject({ port: 'metrics', path: '/metrics' });
  });

  it('the vLLM example publishes a topic the indexer parses, to the indexer ZMQ port', () => {
    const snippet = parseAllDocuments(
      readFileSync(new URL('deploy/examples/vllm-deployment-snippet.yaml', root), 'utf8'),
    )[0].toJSON();
    const args: string[] = snippet.containers[0].args;
    const kv = JSON.parse(args[args.indexOf('--kv-events-config') + 1]);
    const topic = kv.topic.replace('$(POD_IP)', '10.1.2.3').replace('$(PORT)', '8000');
    expect(parseTopic(topic)).toEqual({ ok: true, topic: { endpoint: '10.1.2.3:8000', model: 'Qwen/Qwen3-8B' } });
    expect(portOf(kv.endpoint)).toBe(ports.zmq);
  });
});
