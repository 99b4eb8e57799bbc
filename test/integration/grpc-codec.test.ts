import { credentials, makeGenericClientConstructor, status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlockHasher } from '../../src/keys/index.js';
import { startTestService, type TestService } from '../support/service.js';

const MODEL = 'Qwen/Qwen3-8B';
const A = '10.0.0.1:8000';
const tokens = Array.from({ length: 48 }, (_, i) => i * 1000 + 1);

/** A client that sends raw bytes to a method and hands back the raw response (or the status). */
function rawClient(address: string, path: string) {
  const identity = (b: Buffer) => b;
  const Raw = makeGenericClientConstructor(
    {
      Call: {
        path,
        requestStream: false,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      },
    },
    'Raw',
  );
  const client = new Raw(address, credentials.createInsecure()) as unknown as {
    Call(req: Buffer, cb: (err: { code: number; details: string } | null, res?: Buffer) => void): void;
    close(): void;
  };
  const call = (bytes: number[]) =>
    new Promise<{ code: number; details: string } | Buffer>((resolve) =>
      client.Call(Buffer.from(bytes), (err, res) => resolve(err ? { code: err.code, details: err.details } : res!)),
    );
  return { call, close: () => client.close() };
}

const varint = (v: number) => {
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return out;
};
const len = (field: number, bytes: number[]) => [...varint((field << 3) | 2), ...varint(bytes.length), ...bytes];
const utf8 = (s: string) => [...Buffer.from(s, 'utf8')];

describe('gRPC Score codec over the wire (hand-written decoder and encoder)', () => {
  let t: TestService;

  beforeAll(async () => {
    t = await startTestService();
    const hasher = new BlockHasher({ blockSize: 16, hashSeed: '' });
    t.service.index.add(A, 'GPU', hasher.keysFor(MODEL, tokens));
  });

  afterAll(async () => {
    await t?.stop();
  });

  it('token ids sent unpacked (one field per id) score the same as packed ones', async () => {
    const raw = rawClient(`127.0.0.1:${t.api.grpcPort}`, '/kvindexer.v1.KvIndexer/Score');
    try {
      const unpacked = tokens.flatMap((id) => [0x08, ...varint(id)]);
      const bytes = [...len(1, utf8(MODEL)), ...len(6, unpacked), ...len(8, utf8(A)), ...len(8, utf8('10.0.0.2:8000'))];
      const reply = await raw.call(bytes);
      expect(reply).toBeInstanceOf(Buffer);
      const packed = await t.kv.call('Score', {
        model: MODEL,
        tokens: { tokenIds: tokens },
        candidates: [A, '10.0.0.2:8000'],
      });
      expect(packed.scores.map((s: { matchedBlocks: number }) => s.matchedBlocks)).toEqual([3, 0]);
      // Same response bytes either way.
      const again = await raw.call([
        ...len(1, utf8(MODEL)),
        ...len(6, len(1, tokens.flatMap(varint))),
        ...len(8, utf8(A)),
        ...len(8, utf8('10.0.0.2:8000')),
      ]);
      expect(again).toEqual(reply);
    } finally {
      raw.close();
    }
  });

  it('a malformed request is INVALID_ARGUMENT with the field and the byte offset', async () => {
    const raw = rawClient(`127.0.0.1:${t.api.grpcPort}`, '/kvindexer.v1.KvIndexer/Score');
    try {
      // tokens { token_ids: packed [0x81 …truncated] }
      expect(await raw.call([...len(1, utf8(MODEL)), ...len(6, len(1, [0x81]))])).toEqual({
        code: status.INVALID_ARGUMENT,
        details: `malformed ScoreRequest: tokens.token_ids: truncated varint at byte ${3 + MODEL.length + 4}`,
      });
      expect(await raw.call([0x42, 0x0a, 0x61])).toEqual({
        code: status.INVALID_ARGUMENT,
        details:
          'malformed ScoreRequest: candidates[0]: length 10 runs past the end of the message (1 bytes left) at byte 2',
      });
    } finally {
      raw.close();
    }
  });

  it('other methods answer a malformed request with INVALID_ARGUMENT too (not INTERNAL)', async () => {
    const raw = rawClient(`127.0.0.1:${t.api.grpcPort}`, '/kvindexer.v1.KvIndexer/Lookup');
    try {
      // candidates[0] with a truncated length (proto-loader's decoder)
      expect(await raw.call([0x12, 0x80])).toEqual({
        code: status.INVALID_ARGUMENT,
        details: 'malformed Lookup request: index out of range: 2 + 1 > 2',
      });
    } finally {
      raw.close();
    }
  });

  it('chat and prompt text that is not UTF-8 on the wire is INVALID_ARGUMENT naming the field (Score, ComputeBlockKeys, Render, Select)', async () => {
    const messages = (bad: number[]) => [...utf8('[{"role":"user","content":"caf'), ...bad, ...utf8('"}]')];
    const cases: [string, number, number, string][] = [
      ['/kvindexer.v1.KvIndexer/Score', 4, 5, 'ScoreRequest'],
      ['/kvindexer.v1.KvIndexer/ComputeBlockKeys', 4, 5, 'ComputeBlockKeys request'],
      ['/kvindexer.v1.KvIndexer/Render', 2, 3, 'Render request'],
      ['/kvindexer.v1.KvIndexer/Select', 4, 5, 'Select request'],
    ];
    for (const [path, chatField, promptField, name] of cases) {
      const raw = rawClient(`127.0.0.1:${t.api.grpcPort}`, path);
      try {
        // Select needs candidates before it gets to the prompt (a candidate first: the offsets below follow the head).
        const head = path.endsWith('/Select') ? [...len(1, utf8(MODEL)), ...len(8, utf8(A))] : len(1, utf8(MODEL));
        // 0xe9 alone (é in Latin-1) is no UTF-8: protobuf decoding would make it U+FFFD and carry on. The byte offset
        // named is that of the field's length.
        const chat = len(chatField, len(1, messages([0xe9])));
        expect(await raw.call([...head, ...chat])).toEqual({
          code: status.INVALID_ARGUMENT,
          details: `malformed ${name}: chat.messages_json: is not valid UTF-8 at byte ${head.length + 3}`,
        });
        const kwargs = len(chatField, [...len(1, utf8('[]')), ...len(4, [0x7b, 0xff, 0x7d])]);
        expect(await raw.call([...head, ...kwargs])).toEqual({
          code: status.INVALID_ARGUMENT,
          details: `malformed ${name}: chat.chat_template_kwargs_json: is not valid UTF-8 at byte ${head.length + 7}`,
        });
        // The ChatInput fields of issue 12 (tools_json 6 … reasoning_effort 10) are checked the same way.
        for (const [n, fieldName] of [
          [6, 'tools_json'],
          [7, 'tool_choice'],
          [8, 'documents_json'],
          [9, 'chat_template'],
          [10, 'reasoning_effort'],
        ] as const) {
          const bad = len(chatField, [...len(1, utf8('[]')), ...len(n, [0x7b, 0xff, 0x7d])]);
          expect(await raw.call([...head, ...bad])).toEqual({
            code: status.INVALID_ARGUMENT,
            details: `malformed ${name}: chat.${fieldName}: is not valid UTF-8 at byte ${head.length + 7}`,
          });
        }
        expect(await raw.call([...head, ...len(promptField, [0x68, 0xc3, 0x28])])).toEqual({
          code: status.INVALID_ARGUMENT,
          details: `malformed ${name}: prompt: is not valid UTF-8 at byte ${head.length + 1}`,
        });
        // The same text as valid UTF-8 passes the wire check (and then fails only for the unknown model).
        const ok = await raw.call([...head, ...len(chatField, len(1, messages(utf8('é'))))]);
        expect(ok).toEqual({ code: status.NOT_FOUND, details: expect.stringContaining('model') });
      } finally {
        raw.close();
      }
    }
  });
});
