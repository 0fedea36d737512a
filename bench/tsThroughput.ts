/** The TypeScript pipeline's throughput on one core: decode + correlate + model, no output.
 * Run by bench/run.ts in a node started with the CLI's flags; prints one JSON object.
 * Usage: node <flags> dist/bench/tsThroughput.js RECORDED.bnt */
import { Correlator } from '../src/correlate/correlator';
import { decodeBatch } from '../src/decode';
import { buildTraversal, ModelContext } from '../src/model/build';
import { ProbeHistory } from '../src/model/probes';
import { native } from '../src/native';
import { replayTrace } from '../src/trace/replay';
import { forwardPathEvents, LAB, LAB_PLAN, rawEvents } from './synthetic';

/** From batches the native encoder made: events mode's path, without a file. */
function synthetic(): number {
  const packets = 20000;
  const batches: Buffer[] = [];
  for (let i = 0; i < packets; i += 256) {
    const evs = [];
    for (let j = i; j < Math.min(i + 256, packets); j++) evs.push(...forwardPathEvents(j + 1, BigInt(j) * 1000n, j % 2));
    batches.push(native().encodeBatch(rawEvents(evs), 0, 0));
  }
  const ctx: ModelContext = {
    netns: LAB.netns, bridgeIfindex: LAB.bridge, deviceName: (i) => `if${i}`, symbol: () => undefined,
    dropReason: (r) => `${r}`, toEpochNs: (t) => t, probes: new ProbeHistory([LAB_PLAN]),
  };
  let built = 0;
  const corr = new Correlator({ netns: LAB.netns, bridgeIfindex: LAB.bridge }, (p) => {
    buildTraversal(p.events, ctx, 0, p.branches);
    built++;
  });
  const start = process.hrtime.bigint();
  let events = 0;
  for (const b of batches) for (const e of decodeBatch(b).events) {
    corr.push(e);
    events++;
  }
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  if (built !== packets) throw new Error(`built ${built} of ${packets}`);
  return Math.round(events / secs);
}

/** A trace recorded from the lab, replayed as `replay` does, its traversals built and dropped. */
function recorded(file: string): { eventsPerS: number; events: number } {
  const start = process.hrtime.bigint();
  const r = replayTrace(file, { traversal: () => undefined });
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.error) throw r.error;
  return { eventsPerS: Math.round(r.events / secs), events: r.events };
}

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: tsThroughput.js RECORDED.bnt\n');
  process.exit(2);
}
process.stdout.write(`${JSON.stringify({ ...recorded(file), syntheticEventsPerS: synthetic() })}\n`);
