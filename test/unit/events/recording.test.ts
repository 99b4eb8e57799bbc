import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  encodeHeader,
  encodeRecord,
  parseRecording,
  readRecording,
  RecordingError,
  RecordingWriter,
} from '../../../src/events/recording/format.js';

const frames = [
  Buffer.from('kv@10.0.0.1:8000@m'),
  Buffer.from([0, 0, 0, 0, 0, 0, 0, 7]),
  Buffer.from([0x93, 1, 0x90, 0xc0]),
];

describe('recording format', () => {
  it('round-trips messages of any frame count, plain and gzip', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvrec-'));
    for (const name of ['a.kvrec', 'b.kvrec.gz']) {
      const path = join(dir, name);
      const w = new RecordingWriter(path, { createdAt: '2026-01-01T00:00:00.000Z', source: 'test', format: 'vllm' });
      w.write({ time: 1.5, frames });
      w.write({ time: 2.25, frames: [frames[0], frames[1]] });
      w.write({ time: 3, frames: [] });
      await w.close();
      const { header, messages } = readRecording(path);
      expect(header).toEqual({ createdAt: '2026-01-01T00:00:00.000Z', source: 'test', format: 'vllm' });
      expect(
        messages.map((m) => ({ time: m.time, frames: m.frames.map((f) => Buffer.from(f).toString('hex')) })),
      ).toEqual([
        { time: 1.5, frames: frames.map((f) => f.toString('hex')) },
        { time: 2.25, frames: [frames[0].toString('hex'), frames[1].toString('hex')] },
        { time: 3, frames: [] },
      ]);
    }
    // The documented byte layout: magic, version, header length, header, then length-prefixed records.
    const raw = readFileSync(join(dir, 'a.kvrec'));
    expect(raw.subarray(0, 8).toString('latin1')).toBe('KVREC\0\0\x01');
    expect(gunzipSync(readFileSync(join(dir, 'b.kvrec.gz')))).toEqual(raw);
  });

  it('rejects foreign and truncated files', () => {
    expect(() => parseRecording(Buffer.from('hello world, not a recording'))).toThrow(RecordingError);
    const whole = Buffer.concat([
      encodeHeader({ createdAt: 'x', source: 's', format: 'vllm' }),
      encodeRecord({ time: 1, frames }),
    ]);
    expect(parseRecording(whole).messages).toHaveLength(1);
    // A cut record ends the parse: the whole records before it are kept and the cut is reported (issue 17, bug 7).
    const cut = parseRecording(whole.subarray(0, whole.length - 3));
    expect(cut.messages).toHaveLength(0);
    expect(cut.truncated).toEqual({
      atByte: whole.length - encodeRecord({ time: 1, frames }).length,
      messages: 0,
      reason: expect.stringMatching(/^truncated record at byte \d+/),
    });
  });
});
