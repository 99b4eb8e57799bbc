import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { Publisher } from 'zeromq';
import { encodeHeader, parseRecording } from '../../src/events/recording/format.js';
import { REPO, runCli, spawnCli } from '../support/cli.js';
import { freePort } from '../support/redis-server.js';
import { kvMessage, waitFor } from '../support/zmq.js';

const dir = mkdtempSync(join(tmpdir(), 'kvi-rec-'));
const seqOf = (frames: Uint8Array[]) => Number(Buffer.from(frames[1]).readBigUInt64BE());

/**
 * Issue 17, bug 7: `record --out x.kvrec.gz` killed with SIGKILL left a gzip stream without its end, which could not
 * be replayed at all; a 1 MB gzip bomb took 2.2 GB of RSS. Real recorder processes, real ZMQ publishers.
 */
describe('record killed with SIGKILL, truncated and hostile recordings', () => {
  const pubs: Publisher[] = [];
  afterAll(() => pubs.forEach((p) => p.close()));

  it('a SIGKILLed gzip recording replays every message up to its last flush', async () => {
    const out = join(dir, 'killed.kvrec.gz');
    const port = await freePort();
    const rec = spawnCli(['record', '--out', out, '--bind', `tcp://127.0.0.1:${port}`]);
    await waitFor(() => rec.stderr().includes('recording to'), 'the recorder to bind', 20_000);
    const pub = new Publisher();
    pubs.push(pub);
    pub.connect(`tcp://127.0.0.1:${port}`);
    // Publish for a while (the first ones may go before the subscription is up: PUB drops them).
    let seq = 0;
    const until = Date.now() + 1_500;
    while (Date.now() < until) {
      await pub.send(kvMessage('kv@10.0.0.1:8000@m', seq++, [Date.now() / 1000, [], null]));
      await new Promise((r) => setTimeout(r, 3));
    }
    const lastSent = seq - 1;
    await new Promise((r) => setTimeout(r, 1_000)); // ≥ 3 flush intervals of 250 ms
    rec.child.kill('SIGKILL');
    expect((await rec.exit).signal).toBe('SIGKILL');

    const parsed = parseRecording(readFileSync(out));
    expect(parsed.truncated).toBeNull(); // killed between flushes: every member is whole
    const seqs = parsed.messages.map((m) => seqOf(m.frames));
    expect(seqs.length).toBeGreaterThan(100);
    expect(seqs.at(-1)).toBe(lastSent); // nothing published before the kill was lost
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => seqs[0] + i)); // a contiguous run

    // The CLI replays it (in process) without complaint.
    const replay = await runCli(['replay', out, '--in-process']);
    expect([replay.code, replay.stderr]).toEqual([0, '']);
    expect(JSON.parse(replay.stdout)).toMatchObject({
      messages: seqs.length,
      endpoints: [{ identity: '10.0.0.1:8000', lastSeq: String(lastSent) }],
    });

    // Cut in the middle of the last member (a kill during a write): the whole records are replayed, the cut is named.
    const bytes = readFileSync(out);
    const cutPath = join(dir, 'cut.kvrec.gz');
    writeFileSync(cutPath, bytes.subarray(0, bytes.length - 7));
    const cut = parseRecording(readFileSync(cutPath));
    expect(cut.messages.length).toBeLessThanOrEqual(seqs.length);
    expect(cut.messages.length).toBeGreaterThan(0);
    const cutReplay = await runCli(['replay', cutPath, '--in-process']);
    expect(cutReplay.code).toBe(0);
    expect(JSON.parse(cutReplay.stdout).messages).toBe(cut.messages.length);
    if (cut.truncated) {
      expect(cutReplay.stderr.trim()).toBe(
        `replay: ${cutPath} is cut short: replaying its ${cut.messages.length} whole messages; stopped at byte ${cut.truncated.atByte} of the recording (${cut.truncated.reason})`,
      );
    } else expect(cut.messages.length).toBe(seqs.length); // the 7 bytes were the last member's trailer only
  }, 60_000);

  it('a recording cut inside a record: the records before it replay, stderr says where it stopped', async () => {
    const header = encodeHeader({ createdAt: 'x', source: 'test', format: 'vllm' });
    const parsed = parseRecording(readFileSync(join(dir, 'killed.kvrec.gz')));
    // Re-encode three records plainly and cut the third one in half.
    const { encodeRecord } = await import('../../src/events/recording/format.js');
    const recs = parsed.messages.slice(0, 3).map((m) => encodeRecord(m));
    const file = join(dir, 'half.kvrec');
    writeFileSync(file, Buffer.concat([header, recs[0], recs[1], recs[2].subarray(0, 20)]));
    const r = await runCli(['replay', file, '--in-process']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).messages).toBe(2);
    const at = header.length + recs[0].length + recs[1].length;
    expect(r.stderr.trim()).toBe(
      `replay: ${file} is cut short: replaying its 2 whole messages; stopped at byte ${at} of the recording (truncated record at byte ${at} (16 of ${recs[2].length - 4} bytes))`,
    );
  });

  it('a 1 MB gzip bomb is refused with a clear error, without inflating it (bounded RSS)', async () => {
    // 16 gzip members of 64 MiB of zeros each: about 1 MB on disk, 1 GiB inflated.
    const zeros = gzipSync(Buffer.alloc(64 * 1024 * 1024));
    const first = gzipSync(
      Buffer.concat([encodeHeader({ createdAt: 'x', source: 'bomb', format: 'vllm' }), Buffer.alloc(64 * 1024 * 1024)]),
    );
    const bomb = join(dir, 'bomb.kvrec.gz');
    writeFileSync(bomb, Buffer.concat([first, ...Array.from({ length: 15 }, () => zeros)]));
    const size = statSync(bomb).size;
    expect(size).toBeLessThan(1.2 * 1024 * 1024);
    // GNU time reports the child's peak RSS (kB) on stderr.
    const child = spawn(
      '/usr/bin/time',
      ['-f', 'maxrss_kb=%M', process.execPath, '--import', 'tsx', 'src/cli/main.ts', 'replay', bomb, '--in-process'],
      { cwd: REPO },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(code).toBe(1);
    expect(stderr).toContain(
      `replay: ${bomb}: the recording inflates to more than 268435456 bytes (${size} bytes compressed): not read (a gzip bomb, or raise the limit: replay --max-bytes)`,
    );
    const rssMiB = Number(/maxrss_kb=(\d+)/.exec(stderr)![1]) / 1024;
    expect(rssMiB).toBeLessThan(700); // was 2.2 GB; the bound is 256 MiB of output plus the runtime
  }, 60_000);

  it('record into a directory that does not exist (or is a file): a clear error, exit 1, no stack trace', async () => {
    const missing = join(dir, 'no-such-dir', 'x.kvrec.gz');
    const port = await freePort();
    const r = await runCli(['record', '--out', missing, '--bind', `tcp://127.0.0.1:${port}`]);
    expect([r.code, r.signal]).toEqual([1, null]);
    expect(r.stderr.trim()).toBe(
      `record: cannot write ${missing}: ENOENT: no such file or directory, open '${missing}'`,
    );
    const underFile = join(dir, 'half.kvrec', 'x.kvrec');
    const r2 = await runCli(['record', '--out', underFile, '--bind', `tcp://127.0.0.1:${port}`]);
    expect([r2.code, r2.stderr.trim()]).toEqual([
      1,
      `record: cannot write ${underFile}: ENOTDIR: not a directory, open '${underFile}'`,
    ]);
  });
});
