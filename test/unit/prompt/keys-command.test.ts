import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlockHasher } from '../../../src/keys/index.js';
import { keysReport } from '../../../src/prompt/index.js';
import { runCli } from '../../support/cli.js';
import { MODELS, dataUrl, imagePart, textPart } from './helpers.js';

let tmp: string;
const registry = `${MODELS}registry.yaml`;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'keys-cli-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function requestFile(body: unknown): string {
  const path = join(tmp, `${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify(body));
  return path;
}

describe('kv-indexer keys', () => {
  it('prints tokens, ranges, identifiers and keys for a chat request (registry from YAML)', async () => {
    const file = requestFile({
      model: 'Qwen/Qwen2-VL-2B-Instruct',
      messages: [
        {
          role: 'user',
          content: [imagePart(dataUrl('grey-640x480.png'), { uuid: 'cat-1' }), textPart('What is in this image?')],
        },
      ],
      cache_salt: 'tenant-a',
    });
    const run = await runCli(['keys', '--models', registry, '--block-size', '16', '--hash-seed', '', file]);
    expect([run.code, run.stderr]).toEqual([0, '']);
    // Token ids on one line, everything else indented.
    expect(run.stdout).toContain(`"tokenIds": [${JSON.parse(run.stdout).tokenIds.join(',')}],\n`);
    const r = JSON.parse(run.stdout);
    expect(r.tokenCount).toBe(418);
    expect(r.tokenIds).toHaveLength(418);
    expect(r.items).toMatchObject([{ offset: 15, length: 391, identifier: 'cat-1', estimated: false }]);
    expect(r.blocks).toHaveLength(26);
    expect(r.blocks[0].extra).toEqual(['cat-1', 'tenant-a']);
    expect(r.blocks[25].extra).toEqual(['cat-1']);
    const hasher = new BlockHasher({ blockSize: 16, hashSeed: '' });
    const extras = r.blocks.map((b: { extra: string[] | null }) => b.extra);
    expect(r.blocks.map((b: { key: string }) => b.key)).toEqual(
      [...hasher.keysFor(r.keyModel, r.tokenIds, extras)].map(String),
    );
  }, 60_000);

  it('reads a tools request file as Python reads JSON: 2.0, integer-like key order and big ints reach the template', async () => {
    const path = join(tmp, 'tools.json');
    // Raw JSON text: JSON.parse would print 2 and move "2025"/"10" first.
    const args = JSON.stringify('{"factor": 2.0, "2025": 1, "b": 2, "10": 3, "id": 12345678901234567890}');
    writeFileSync(
      path,
      `{"model": "Qwen/Qwen3-8B", "tools": [{"type": "function", "function": {"name": "scale", "parameters": {"type": "object", "properties": {"factor": {"type": "number", "default": 1.0}}}}}], "messages": [{"role": "user", "content": "Scale it"}, {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "scale", "arguments": ${args}}}]}, {"role": "tool", "tool_call_id": "c1", "content": "ok"}]}`,
    );
    const r = await keysReport(readFileSync(path, 'utf8'), { modelsPath: registry, blockSize: 16, hashSeed: '' });
    expect(r.text).toContain(
      '{"type": "function", "function": {"name": "scale", "description": null, "parameters": {"type": "object", "properties": {"factor": {"type": "number", "default": 1.0}}}}}',
    );
    expect(r.text).toContain(
      '<tool_call>\n{"name": "scale", "arguments": {"factor": 2.0, "2025": 1, "b": 2, "10": 3, "id": 12345678901234567890}}\n</tool_call>',
    );
  }, 60_000);

  it('exits 1 with the error code and field for a rejected request', async () => {
    const file = requestFile({ model: 'Qwen/Qwen3-8B', messages: [{ role: 'user' }] });
    const run = await runCli(['keys', '--models', registry, file]);
    expect([run.code, run.stdout, run.stderr]).toEqual([
      1,
      '',
      'error (invalid_argument): messages[0].content: missing content\n',
    ]);
  }, 60_000);

  it('exits 2 on bad usage', async () => {
    const run = await runCli(['keys', 'only-a-file.json'], { KV_INDEXER_MODELS: '' });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^usage: kv-indexer keys --models/);
  }, 60_000);
});
