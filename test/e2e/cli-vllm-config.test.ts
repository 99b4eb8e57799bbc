import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'kvi-vllm-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `kv-indexer serve` with a registry whose `vllm` block is wrong: it stops at start, naming the key. */
async function serveWith(vllm: Record<string, unknown>): Promise<{ code: number | null; output: string }> {
  const registry = join(dir, `registry-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(
    registry,
    JSON.stringify({ models: [{ name: 'Qwen/Qwen2-VL-2B-Instruct', dir: `${ROOT}fixtures/models/qwen2-vl`, vllm }] }),
  );
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve'], {
    cwd: ROOT,
    env: {
      ...process.env,
      KV_INDEXER_MODELS: registry,
      KV_INDEXER_GRPC_ADDRESS: '127.0.0.1:0',
      KV_INDEXER_METRICS_PORT: '0',
      KV_INDEXER_METRICS_HOST: '127.0.0.1',
      KV_INDEXER_ZMQ_ADDRESSES: 'tcp://127.0.0.1:*',
      KV_INDEXER_STATS_INTERVAL_SECONDS: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, output };
}

describe('kv-indexer serve refuses a wrong vllm block at start', () => {
  it('a version before 0.13: exits non-zero naming models[0].vllm.version and the oldest supported', async () => {
    const { code, output } = await serveWith({ version: '0.12.0' });
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    expect(output).toContain('models[0].vllm.version');
    expect(output).toContain('0.13.0');
    expect(output).not.toContain('API serving');
  }, 90_000);

  it('an unknown hasher: exits non-zero naming models.0.vllm.mmHasher', async () => {
    const { code, output } = await serveWith({ version: '0.19.1', mmHasher: 'md5' });
    expect(code).not.toBe(0);
    expect(output).toContain('models.0.vllm.mmHasher');
    expect(output).not.toContain('API serving');
  }, 90_000);
});
