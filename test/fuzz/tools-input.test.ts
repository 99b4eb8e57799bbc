import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PromptError, PromptService, TokenizerPool } from '../../src/prompt/index.js';
import { parsePyJson, stringifyPyJson } from '../../src/prompt/py-json.js';
import { QWEN3 } from '../unit/prompt/helpers.js';

/**
 * Hostile tools, tool_choice, documents, reasoning_effort and tool-call arguments through PromptService (Qwen3, whose
 * template prints tools and arguments with tojson). Invariant: a request prepares, or fails with one PromptError of
 * a caller-facing code — never another exception; and a JSON text survives parsePyJson → stringifyPyJson → parsePyJson.
 */
const SEED = 0x4b56_0012;
const CALLER_CODES = ['invalid_argument', 'resource_exhausted', 'not_found', 'failed_precondition'];

let svc: PromptService;
let pool: TokenizerPool;

beforeAll(async () => {
  pool = new TokenizerPool({ size: 1 });
  svc = await PromptService.create({
    pool,
    keys: { blockSize: 16, hashSeed: '' },
    registry: { models: [{ ...QWEN3, excludeToolsWhenToolChoiceNone: true }] },
  });
}, 60_000);

afterAll(async () => {
  await svc?.close();
  await pool?.close();
});

const json = fc.jsonValue({ maxDepth: 4 });
const toolArb = fc.oneof(
  json,
  fc.record(
    {
      type: fc.oneof(fc.constant('function'), json),
      function: fc.oneof(
        json,
        fc.record(
          { name: fc.oneof(fc.string(), json), description: json, parameters: json },
          { requiredKeys: ['name'] },
        ),
      ),
    },
    { requiredKeys: [] },
  ),
);
const argsArb = fc.oneof(
  fc.json({ maxDepth: 3 }),
  fc.string(),
  json,
  fc.constant(''),
  fc.constant('{"a": 2.0, "10": 1}'),
);

describe('fuzz: tools and tool calls never crash the prompt path', () => {
  it('prepares or fails with a caller-facing PromptError', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          tools: fc.oneof(fc.constant(undefined), fc.array(toolArb, { maxLength: 3 }), json),
          tool_choice: fc.oneof(fc.constant(undefined), fc.constantFrom('none', 'auto', 'required', 'x'), json),
          documents: fc.oneof(fc.constant(undefined), json),
          reasoning_effort: fc.oneof(fc.constant(undefined), fc.constantFrom('none', 'high'), json),
          args: argsArb,
        }),
        async ({ args, ...fields }) => {
          const request = {
            model: QWEN3.name,
            ...fields,
            messages: [
              { role: 'user', content: 'go' },
              {
                role: 'assistant',
                content: null,
                tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: args } }],
              },
              { role: 'tool', tool_call_id: 'c', content: 'ok' },
            ],
          };
          try {
            const r = await svc.prepare(request);
            expect(r.tokenIds.length).toBeGreaterThan(0);
          } catch (err) {
            expect(err, String(err)).toBeInstanceOf(PromptError);
            expect(CALLER_CODES).toContain((err as PromptError).code);
          }
        },
      ),
      { seed: SEED, numRuns: 150 },
    );
  }, 120_000);

  it('parsePyJson ∘ stringifyPyJson is the identity on JSON texts', () => {
    fc.assert(
      fc.property(fc.json({ maxDepth: 5 }), (text) => {
        const once = stringifyPyJson(parsePyJson(text));
        expect(stringifyPyJson(parsePyJson(once))).toBe(once);
        expect(JSON.parse(once)).toEqual(JSON.parse(text));
      }),
      { seed: SEED, numRuns: 500 },
    );
  });
});
