/** --rules in a recording: the rule tracer's bare watermarks are thinned, never its messages
 * or a new loss count, and never right after recorded events. */
import { describe, expect, it } from 'vitest';
import { bpftrace_net as pb } from '../../src/gen/bpftrace_net';
import { RuleBatchFilter } from '../../src/trace/ruleBatches';

const bare = (drainedTo: number, lost = 0) => pb.RuleBatch.encode({ drainedTo, lost }).finish();
const withTrace = (drainedTo: number) => pb.RuleBatch.encode({ drainedTo, events: [{ ts: drainedTo - 1, id: 7, table: 't', chain: 'c' }] }).finish();

describe('RuleBatchFilter', () => {
  it('keeps messages, new losses and the watermarks after recorded events; one idle watermark a second', () => {
    const f = new RuleBatchFilter();
    const kept: number[] = [];
    let events = 0;
    for (let i = 0; i < 100; i++) {
      const ms = i * 50;
      if (i === 10) events += 12; // a packet recorded
      const batch = i === 30 ? withTrace(ms) : i === 60 ? bare(ms, 3) : bare(ms, i > 60 ? 3 : 0);
      if (f.keep(batch, events, ms)) kept.push(i);
    }
    expect(kept).toEqual([0, 10, 11, 12, 30, 50, 60, 80]);
  });

  it('a batch of messages is recognised by its first field; an empty batch is a bare watermark', () => {
    const f = new RuleBatchFilter();
    expect(f.keep(bare(1), 0, 0)).toBe(true);
    expect(f.keep(bare(2), 0, 10)).toBe(false);
    expect(f.keep(bare(3), 5, 20)).toBe(true);
    for (let i = 0; i < 2; i++) expect(f.keep(bare(4 + i), 5, 30 + i)).toBe(true);
    expect(f.keep(bare(9), 5, 100)).toBe(false);
    expect(f.keep(withTrace(10), 5, 110)).toBe(true);
    expect(f.keep(pb.RuleBatch.encode({}).finish(), 5, 120)).toBe(false);
  });
});
