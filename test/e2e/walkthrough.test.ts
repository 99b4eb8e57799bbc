import type { RunningApi } from '../../src/service/start-api.js';
import type { RunningService } from '../../src/service/start-service.js';
import { startTestService, type TestService } from '../support/service.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRecording } from '../../src/events/recording/format.js';
import { demoRecordingFrames } from '../../scripts/make-demo-recording.js';
import { runCli } from '../support/cli.js';
import { waitFor } from '../support/zmq.js';

const RECORDING = 'fixtures/recordings/demo-chat.kvrec.gz';

/** README "Walk-through": replay the demo recording into a running service, then score the same chat. */
describe('README walk-through (replay a recording, score a chat with an image)', () => {
  let t: TestService;
  let service: RunningService;
  let api: RunningApi;

  beforeAll(async () => {
    t = await startTestService({ demoModel: true });
    ({ service, api } = t);
  }, 60_000);

  afterAll(async () => {
    await t?.stop();
  });

  it('the committed recording is what scripts/make-demo-recording.ts generates', async () => {
    const expected = await demoRecordingFrames();
    const { header, messages } = readRecording(RECORDING);
    expect(header.format).toBe('vllm');
    expect(messages.map((m) => m.frames.map((f) => Buffer.from(f).toString('hex')))).toEqual(
      expected.map((frames) => frames.map((f) => f.toString('hex'))),
    );
  });

  it('kv-indexer replay … --connect, then kv-indexer score ranks the endpoint that served the chat first', async () => {
    const replay = await runCli([
      'replay',
      RECORDING,
      '--connect',
      service.subscriber.lastEndpoint!,
      '--pace',
      'fast',
      '--linger',
      '0',
    ]);
    expect(replay.code).toBe(0);
    expect(replay.stderr).toContain('published ');
    await waitFor(() => service.index.entriesOf('10.0.0.1:8000') === 26, 'the replayed blocks');

    const score = await runCli([
      'score',
      'fixtures/requests/demo-chat.json',
      '--candidates',
      '10.0.0.2:8000,10.0.0.1:8000',
      '--address',
      `127.0.0.1:${api.grpcPort}`,
    ]);
    expect([score.code, score.stderr]).toEqual([0, '']);
    const out = score.stdout.split('\n').slice(0, -1);
    expect(out).toEqual([
      '418 tokens, 26 blocks',
      'endpoint                 matched weighted normalized  tiers',
      '10.0.0.1:8000                 26    26.00      1.000  GPU:26',
      '10.0.0.2:8000                  0     0.00      0.000  ',
    ]);
  }, 60_000);
});
