/**
 * `npm run bench [-- --quick] [-- --only name,name]`: runs the suites, prints a table, writes bench/results/<suite>.json.
 * Goals come from DESIGN.md ("Goals the design must reach"); they are reported, never asserted in tests.
 */
import { writeResult, type Suite } from './harness.js';
import { decodeSuite } from './suites/decode.js';
import { hashingSuite } from './suites/hashing.js';
import { ingestSuite } from './suites/ingest.js';
import { indexSuite } from './suites/index-memory.js';
import { grpcSuite } from './suites/grpc.js';
import { grpcThreadsSuite } from './suites/grpc-threads.js';
import { grpcProcessesSuite } from './suites/grpc-processes.js';
import { grpcChatSuite } from './suites/grpc-chat.js';
import { grpcToolsSuite } from './suites/grpc-tools.js';
import { grpcHygieneSuite } from './suites/grpc-hygiene.js';
import { promptSuite } from './suites/prompt.js';
import { transportSuite } from './suites/transport.js';
import { redisSuite } from './suites/redis.js';
import { mmHashSuite } from './suites/mm-hash.js';
import { selectSuite } from './suites/select.js';
import { scrapeSuite } from './suites/scrape.js';

const SUITES: Suite[] = [
  decodeSuite,
  hashingSuite,
  ingestSuite,
  indexSuite,
  transportSuite,
  promptSuite,
  grpcSuite,
  grpcThreadsSuite,
  grpcProcessesSuite,
  grpcChatSuite,
  grpcToolsSuite,
  grpcHygieneSuite,
  redisSuite,
  mmHashSuite,
  selectSuite,
  scrapeSuite,
];

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const onlyArg =
  args.find((a) => a.startsWith('--only='))?.slice('--only='.length) ??
  (args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined);
const only = onlyArg ? new Set(onlyArg.split(',')) : null;

/**
 * A suite that has not finished in this long is stuck (a lost reply, a peer that never answers): the run stops with
 * its name and a non-zero status instead of holding CI until its own limit. The longest full suite takes minutes.
 */
const SUITE_TIMEOUT_S = quick ? 600 : 3_600;

for (const suite of SUITES) {
  if (only && !only.has(suite.name)) continue;
  process.stdout.write(`\n== ${suite.name}: ${suite.description}\n`);
  const watchdog = setTimeout(() => {
    console.error(`bench: suite ${suite.name} did not finish within ${SUITE_TIMEOUT_S} s; stopping the run`);
    process.exit(1);
  }, SUITE_TIMEOUT_S * 1_000);
  const result = await suite.run({ quick });
  clearTimeout(watchdog);
  const rows = Object.entries(result.figures).map(([name, f]) => ({
    figure: name,
    value: Number.isInteger(f.value) ? f.value : Number(f.value.toPrecision(4)),
    unit: f.unit,
    goal: f.goal ?? '',
  }));
  console.table(rows);
  console.log(`wrote ${writeResult(suite, result, quick)}`);
}

// Every suite stops what it started; should a handle stay open anyway, the run still ends (and says so).
setTimeout(() => {
  console.error('bench: handles still open 10 s after the last suite; exiting');
  process.exit(0);
}, 10_000).unref();
