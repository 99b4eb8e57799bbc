import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { status } from '@grpc/grpc-js';
import { Tokenizer } from '@huggingface/tokenizers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Publisher } from 'zeromq';
import { agentChat } from '../../bench/support/agent-chat.js';
import { readModelDir, specialTokensMap } from '../../src/prompt/model-dir.js';
import { runCli } from '../support/cli.js';
import { startTestService, type TestService } from '../support/service.js';
import { connectedPublisher, kvMessage, waitFor } from '../support/zmq.js';
import { renderReference } from '../unit/prompt/jinja-parity.js';

const MODEL = 'Qwen/Qwen3-8B';
const QWEN3_DIR = fileURLToPath(new URL('../../fixtures/models/qwen3', import.meta.url));
const A = '10.0.0.1:8000';
const B = '10.0.0.2:8000';

/** The reference: Python Jinja2 renders the request as vLLM does, the tokenizer library (unpatched) tokenizes. */
function referenceTokens(request: string, excludeToolsWhenNone = true): number[] {
  const files = readModelDir(QWEN3_DIR);
  const [r] = renderReference([
    {
      template: files.chatTemplate!.source,
      special_tokens: specialTokensMap(files.tokenizerConfig),
      content_format: 'string',
      exclude_tools_when_none: excludeToolsWhenNone,
      request,
    },
  ]);
  if (!('text' in r)) throw new Error(`reference failed: ${r.error}`);
  const tokenizer = new Tokenizer(
    JSON.parse(readFileSync(`${QWEN3_DIR}/tokenizer.json`, 'utf8')),
    files.tokenizerConfig,
  );
  return tokenizer.encode(r.text, { add_special_tokens: false }).ids;
}

/**
 * A tool-using agent chat end to end through gRPC: tools_json, tool calls whose arguments hold 2.0, integer-like keys
 * and 20-digit ids, tool results — the service's tokens are exactly those of the reference rendering (Python
 * Jinja2 as vLLM renders + the tokenizer), and Score matches every block an engine stored for them.
 */
describe('gRPC Score from a tool-using agent chat (Qwen3 template)', () => {
  let t: TestService;
  let pub: Publisher;
  let dir: string;
  const chat = agentChat(3, 7);
  const request = `{"messages": ${chat.messages}, "tools": ${chat.tools}, "tool_choice": "auto"}`;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'grpc-tools-'));
    const registry = join(dir, 'models.yaml');
    writeFileSync(
      registry,
      `workers: 1\nmodels:\n  - name: ${MODEL}\n    dir: ${QWEN3_DIR}\n    excludeToolsWhenToolChoiceNone: true\n`,
    );
    t = await startTestService({ registry });
    pub = await connectedPublisher(
      t.service.subscriber.lastEndpoint!,
      kvMessage('kv@10.9.9.9:1@probe', 0, [0, [], null]),
      () => t.service.pipeline.endpoints().has('10.9.9.9:1'),
    );
  }, 60_000);

  afterAll(async () => {
    pub?.close();
    await t?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives the reference tokens, and Score matches the blocks an engine stored for them', async () => {
    const expected = referenceTokens(request);
    const keys = await t.kv.call('ComputeBlockKeys', {
      model: MODEL,
      chat: { messagesJson: chat.messages, toolsJson: chat.tools, toolChoice: 'auto' },
    });
    expect(keys.tokenIds).toEqual(expected);
    expect(expected.length).toBeGreaterThan(900);

    // The same chat as JSON.parse sees it (2.0 → 2, integer-like keys first): what this service rendered before.
    const lossy = JSON.stringify({
      messages: JSON.parse(chat.messages).map(lossyArguments),
      tools: JSON.parse(chat.tools),
      tool_choice: 'auto',
    });
    const lossyTokens = referenceTokens(lossy);
    const firstDiff = expected.findIndex((id, i) => lossyTokens[i] !== id);
    expect(firstDiff).toBeGreaterThan(0);

    const blocks = Math.floor(expected.length / 16);
    const stored = (endpoint: string, ids: number[], base: number) => {
      const blocks = Math.floor(ids.length / 16);
      return pub.send(
        kvMessage(`kv@${endpoint}@${MODEL}`, 0, [
          1,
          [
            {
              type: 'BlockStored',
              block_hashes: Array.from({ length: blocks }, (_, b) => BigInt(base + b)),
              parent_block_hash: null,
              token_ids: ids.slice(0, blocks * 16),
              block_size: 16,
            },
          ],
          null,
        ]),
      );
    };
    await stored(A, expected, 1000);
    await stored(B, lossyTokens, 5000);
    const lossyBlocks = Math.floor(lossyTokens.length / 16);
    await waitFor(
      () => t.service.index.entriesOf(A) === blocks && t.service.index.entriesOf(B) === lossyBlocks,
      'both stores',
    );

    const res = await t.kv.call('Score', {
      model: MODEL,
      chat: { messagesJson: chat.messages, toolsJson: chat.tools, toolChoice: 'auto' },
      candidates: [A, B],
    });
    expect(res.tokenCount).toBe(expected.length);
    expect(res.scores.map((s: { endpoint: string; matchedBlocks: number }) => [s.endpoint, s.matchedBlocks])).toEqual([
      [A, blocks],
      [B, Math.floor(firstDiff / 16)],
    ]);

    // The CLI: `kv-indexer score` with the same request as a file (raw JSON, re-encoded without loss).
    const file = join(dir, 'agent.json');
    writeFileSync(
      file,
      `{"model": "${MODEL}", "messages": ${chat.messages}, "tools": ${chat.tools}, "tool_choice": "auto"}`,
    );
    const run = await runCli(['score', file, '--candidates', `${A},${B}`, '--address', `127.0.0.1:${t.api.grpcPort}`]);
    expect([run.code, run.stderr]).toEqual([0, '']);
    const out = run.stdout.split('\n');
    expect(out[0]).toBe(`${expected.length} tokens, ${blocks} blocks`);
    expect(out[2].split(/\s+/).slice(0, 2)).toEqual([A, String(blocks)]);
  }, 60_000);

  it('withholds tools for tool_choice "none" (the model sets excludeToolsWhenToolChoiceNone), keeps them otherwise', async () => {
    const none = await t.kv.call('ComputeBlockKeys', {
      model: MODEL,
      chat: { messagesJson: chat.messages, toolsJson: chat.tools, toolChoice: 'none' },
    });
    expect(none.tokenIds).toEqual(
      referenceTokens(`{"messages": ${chat.messages}, "tools": ${chat.tools}, "tool_choice": "none"}`),
    );
    expect(none.tokenIds).toEqual(referenceTokens(`{"messages": ${chat.messages}}`));
    const named = await t.kv.call('ComputeBlockKeys', {
      model: MODEL,
      chat: {
        messagesJson: chat.messages,
        toolsJson: chat.tools,
        toolChoice: '{"type": "function", "function": {"name": "convert_currency"}}',
      },
    });
    expect(named.tokenIds).toEqual(referenceTokens(request));
  });

  it('refuses bad tools, tool_choice, arguments and untrusted templates with INVALID_ARGUMENT / FAILED_PRECONDITION naming the field; caches nothing', async () => {
    const before = t.prompts!.service.stats().cacheEntries;
    const call = (chatInput: Record<string, unknown>) =>
      t.kv.call('Score', { model: MODEL, chat: { messagesJson: chat.messages, ...chatInput } }).then(
        () => null,
        (e: { code: number; details: string }) => [e.code, e.details],
      );
    const badArgs = chat.messages.replace('"arguments":"{\\"from', '"arguments":"{from');
    expect(badArgs).not.toBe(chat.messages);
    expect(await call({ toolsJson: '[{"type": "function"' })).toEqual([
      status.INVALID_ARGUMENT,
      expect.stringMatching(/^chat\.tools_json: is not valid JSON: expecting ',' delimiter at character 20/),
    ]);
    expect(await call({ toolsJson: '{"type": "function"}' })).toEqual([
      status.INVALID_ARGUMENT,
      'chat.tools_json: must be a JSON array of tools',
    ]);
    expect(await call({ toolsJson: '["search"]' })).toEqual([
      status.INVALID_ARGUMENT,
      'tools[0]: a tool must be a JSON object',
    ]);
    expect(await call({ toolsJson: '[{"type": "function", "function": {"description": "x"}}]' })).toEqual([
      status.INVALID_ARGUMENT,
      'tools[0].function.name: must be a string',
    ]);
    expect(await call({ toolsJson: chat.tools, toolChoice: 'sometimes' })).toEqual([
      status.INVALID_ARGUMENT,
      expect.stringMatching(/^tool_choice: must be "none", "auto", "required"/),
    ]);
    // vLLM check_tool_usage (chat_completion/protocol.py): a named tool_choice must name one of the request's tools.
    expect(
      await call({ toolsJson: chat.tools, toolChoice: '{"type": "function", "function": {"name": "no_such_tool"}}' }),
    ).toEqual([
      status.INVALID_ARGUMENT,
      expect.stringMatching(/^tool_choice: names function "no_such_tool", which is not one of the request's tools \("/),
    ]);
    expect(await call({ documentsJson: '[{"title": 1}]' })).toEqual([
      status.INVALID_ARGUMENT,
      'documents[0].title: must be a string',
    ]);
    expect(await call({ reasoningEffort: 'extreme' })).toEqual([
      status.INVALID_ARGUMENT,
      expect.stringMatching(/^reasoning_effort: must be one of none, minimal/),
    ]);
    expect(await call({ chatTemplate: '{{ messages }}' })).toEqual([
      status.FAILED_PRECONDITION,
      expect.stringMatching(/^chat_template: model "Qwen\/Qwen3-8B" does not accept a request's own chat template/),
    ]);
    const args = await t.kv
      .call('Score', { model: MODEL, chat: { messagesJson: badArgs, toolsJson: chat.tools } })
      .catch((e: { code: number; details: string }) => [e.code, e.details]);
    expect(args).toEqual([
      status.INVALID_ARGUMENT,
      expect.stringMatching(
        /^messages\[2\]\.tool_calls\[0\]\.function\.arguments: is not valid JSON: expecting a property name/,
      ),
    ]);
    expect(t.prompts!.service.stats().cacheEntries).toBe(before);
  });
});

/** A message as JSON.parse + JSON.stringify leaves it: tool-call arguments re-encoded by JavaScript. */
function lossyArguments(m: { tool_calls?: { function: { arguments: string } }[] }) {
  for (const c of m.tool_calls ?? []) c.function.arguments = JSON.stringify(JSON.parse(c.function.arguments));
  return m;
}
