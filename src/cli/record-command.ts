import { parseArgs } from 'node:util';
import { RecordingError } from '../events/recording/format.js';
import { Recorder } from '../events/recording/recorder.js';

const USAGE = `usage: kv-indexer record --out FILE [--bind ADDR]... [--connect ADDR]... [--duration SECONDS] [--count N]
                          [--format vllm|sglang] [--note TEXT]

Captures raw KV-event messages (topic, seq, payload, receive time) into FILE in the service's recording format
(docs/events.md; gzip when FILE ends in .gz). Stops after --duration seconds, --count messages, or on SIGINT/SIGTERM.
Records are flushed every 250 ms (gzip: one member each), so a recorder killed outright (SIGKILL, OOM) leaves a file
that replays up to its last flush. Exit codes: 0 done, 1 FILE cannot be written or an address cannot be bound, 2 usage.`;

/** `record`: returns the process exit code. */
export async function recordCommand(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        out: { type: 'string', short: 'o' },
        bind: { type: 'string', multiple: true },
        connect: { type: 'string', multiple: true },
        duration: { type: 'string' },
        count: { type: 'string' },
        format: { type: 'string' },
        note: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    console.log(USAGE);
    return 0;
  }
  const bind = args.bind ?? [];
  const connect = args.connect ?? [];
  const format = args.format ?? 'vllm';
  const duration = args.duration === undefined ? Infinity : Number(args.duration);
  const count = args.count === undefined ? Infinity : Number(args.count);
  if (
    !args.out ||
    (bind.length === 0 && connect.length === 0) ||
    (format !== 'vllm' && format !== 'sglang') ||
    !(duration > 0) ||
    !(count > 0)
  ) {
    console.error(USAGE);
    return 2;
  }
  let recorder: Recorder;
  try {
    // The file is opened first: an unwritable path fails before any socket is bound.
    recorder = new Recorder(
      args.out,
      { source: `record ${[...bind, ...connect].join(' ')}`, format, note: args.note },
      { bind, connect },
    );
  } catch (err) {
    if (!(err instanceof RecordingError)) throw err;
    console.error(`record: ${err.message}`);
    return 1;
  }
  try {
    await recorder.start();
  } catch (err) {
    await recorder.stop().catch(() => undefined);
    console.error(
      `record: cannot listen on or connect to ${[...bind, ...connect].join(', ')}: ${(err as Error).message}`,
    );
    return 1;
  }
  console.error(`recording to ${args.out} from ${[...bind, ...connect].join(', ')}`);
  await new Promise<void>((resolve) => {
    const timers: NodeJS.Timeout[] = [];
    const done = () => {
      timers.forEach(clearTimeout);
      timers.forEach(clearInterval);
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
    if (Number.isFinite(duration)) timers.push(setTimeout(done, duration * 1000));
    if (Number.isFinite(count)) timers.push(setInterval(() => recorder.count >= count && done(), 20));
  });
  try {
    const n = await recorder.stop();
    console.error(`recorded ${n} messages to ${args.out}`);
    return 0;
  } catch (err) {
    console.error(`record: ${(err as Error).message}`);
    return 1;
  }
}
