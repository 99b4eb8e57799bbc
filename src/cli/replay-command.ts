import { parseArgs } from 'node:util';
import { Publisher } from 'zeromq';
import { DEFAULT_MAX_RECORDING_BYTES, readRecording, RecordingError } from '../events/recording/format.js';
import { publishRecording, RecordedReplayServer } from '../events/recording/player.js';
import { replayInProcess } from '../events/recording/replay-in-process.js';

const USAGE = `usage: kv-indexer replay FILE (--bind ADDR | --connect ADDR) [--pace original|fast|FACTOR]
                          [--replay-bind ADDR --topic TOPIC [--rank R] [--layout old|new]] [--linger SECONDS]
       kv-indexer replay FILE --in-process [--block-size N] [--hash-seed S]

Publishes a recording (docs/events.md) on a PUB socket, bound or connected, with the original pacing (or FACTOR
times faster, or as fast as possible), optionally serving the recorded buffer of one topic on a replay ROUTER;
or, with --in-process, feeds it straight into an in-memory index and prints the resulting state as JSON.

A recording cut short (a killed recorder) is replayed up to its last whole record; where it stopped is printed on
stderr. A gzip recording inflating past --max-bytes (default ${DEFAULT_MAX_RECORDING_BYTES}) is refused (exit 1).`;

/** `replay`: returns the process exit code. */
export async function replayCommand(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        bind: { type: 'string' },
        connect: { type: 'string' },
        pace: { type: 'string' },
        'replay-bind': { type: 'string' },
        topic: { type: 'string' },
        rank: { type: 'string' },
        layout: { type: 'string' },
        linger: { type: 'string' },
        'in-process': { type: 'boolean' },
        'block-size': { type: 'string' },
        'hash-seed': { type: 'string' },
        'max-bytes': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
    return 2;
  }
  const args = parsed.values;
  if (args.help) {
    console.log(USAGE);
    return 0;
  }
  const file = parsed.positionals[0];
  if (!file || parsed.positionals.length !== 1) {
    console.error(USAGE);
    return 2;
  }
  const maxBytes = args['max-bytes'] === undefined ? DEFAULT_MAX_RECORDING_BYTES : Number(args['max-bytes']);
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
    console.error(`--max-bytes must be a positive integer\n\n${USAGE}`);
    return 2;
  }
  let recording;
  try {
    recording = readRecording(file, { maxBytes });
  } catch (err) {
    if (!(err instanceof RecordingError) && (err as NodeJS.ErrnoException).code === undefined) throw err;
    console.error(`replay: ${file}: ${(err as Error).message}`);
    return 1;
  }
  const { header, messages, truncated } = recording;
  if (truncated) {
    console.error(
      `replay: ${file} is cut short: replaying its ${truncated.messages} whole messages; stopped at byte ${truncated.atByte} of the recording (${truncated.reason})`,
    );
  }
  if (args['in-process']) {
    const blockSize = Number(args['block-size'] ?? 16);
    const state = await replayInProcess(messages, header.format, blockSize, args['hash-seed'] ?? '');
    console.log(JSON.stringify(state, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2));
    return 0;
  }
  if (!!args.bind === !!args.connect) {
    console.error(`exactly one of --bind and --connect\n\n${USAGE}`);
    return 2;
  }
  const pace =
    args.pace === undefined || args.pace === 'original' ? 1 : args.pace === 'fast' ? 'fast' : Number(args.pace);
  if (pace !== 'fast' && !(pace > 0)) {
    console.error(`--pace must be original, fast or a positive factor\n\n${USAGE}`);
    return 2;
  }
  const layout = args.layout ?? 'new';
  if (layout !== 'old' && layout !== 'new') {
    console.error(`--layout must be old or new\n\n${USAGE}`);
    return 2;
  }
  let server: RecordedReplayServer | null = null;
  if (args['replay-bind']) {
    if (!args.topic) {
      console.error(`--replay-bind needs --topic\n\n${USAGE}`);
      return 2;
    }
    server = new RecordedReplayServer(messages, args.topic, layout, Number(args.rank ?? 0));
    console.error(`replay ROUTER on ${await server.bind(args['replay-bind'])}`);
  }
  const pub = new Publisher({ sendHighWaterMark: 1_000_000, linger: 1_000 });
  if (args.bind) await pub.bind(args.bind);
  else pub.connect(args.connect!);
  // Give subscribers a moment to (re)connect and subscribe: PUB drops what it sends before that.
  await new Promise((r) => setTimeout(r, 500));
  const sent = await publishRecording(pub, messages, { pace });
  console.error(`published ${sent} messages from ${file}`);
  await new Promise((r) => setTimeout(r, Number(args.linger ?? 1) * 1000));
  pub.close();
  await server?.close();
  return 0;
}
