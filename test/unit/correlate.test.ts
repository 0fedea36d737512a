import { describe, expect, it } from 'vitest';
import { forwardPathEvents, LAB, KIND } from '../../bench/synthetic';
import { CloseReason, Correlator } from '../../src/correlate/correlator';
import type { KernelEvent } from '../../src/decode';
import { throughPipe } from '../support/events';

function collect(opts: Partial<ConstructorParameters<typeof Correlator>[0]> = {}) {
  const closed: { events: KernelEvent[]; why: CloseReason; branches: KernelEvent[][] }[] = [];
  const c = new Correlator({ netns: LAB.netns, bridgeIfindex: LAB.bridge, ...opts }, (p) => closed.push(p));
  return { c, closed };
}

describe('correlator', () => {
  it('turns packets interleaved on two CPUs into one complete packet each', () => {
    const n = 200;
    const streams = Array.from({ length: n }, (_, i) => throughPipe(forwardPathEvents(i + 1, BigInt(i) * 10n, i % 2)));
    // Round-robin interleave, as two CPUs emitting into one ring would.
    const mixed: KernelEvent[] = [];
    for (let step = 0; step < streams[0].length; step++) for (const s of streams) mixed.push(s[step]);
    const { c, closed } = collect();
    for (const e of mixed) c.push(e);
    expect(closed).toHaveLength(n);
    expect(c.openCount).toBe(0);
    for (const p of closed) {
      expect(p.why).toBe('end');
      expect(new Set(p.events.map((e) => e.packetId)).size).toBe(1);
      expect(p.events.map((e) => e.seq)).toEqual([...Array(streams[0].length).keys()]);
    }
  });

  it('does not end a packet at TX on the bridge itself', () => {
    const events = throughPipe([
      { ts: 1n, packetId: 1n, seq: 0, kind: KIND.TX, ifindex: LAB.bridge, netns: LAB.netns },
      { ts: 2n, packetId: 1n, seq: 1, kind: KIND.TX, ifindex: LAB.veth, netns: LAB.netns },
    ]);
    const { c, closed } = collect();
    c.push(events[0]);
    expect(closed).toHaveLength(0);
    c.push(events[1]);
    expect(closed).toHaveLength(1);
  });

  it('closes a packet without an end after the idle timeout, and bounds open packets', () => {
    const [first] = throughPipe([{ ts: 1000n, packetId: 1n, seq: 0, kind: KIND.RX, ifindex: LAB.veth, netns: LAB.netns }]);
    const { c, closed } = collect({ idleTimeoutNs: 500 });
    c.push(first);
    c.expire(1400);
    expect(closed).toHaveLength(0);
    c.expire(1500);
    expect(closed.map((p) => p.why)).toEqual(['timeout']);

    const bounded = collect({ maxOpen: 3 });
    const starts = throughPipe([1n, 2n, 3n, 4n].map((id) => ({ ts: id, packetId: id, seq: 0, kind: KIND.RX, ifindex: LAB.veth, netns: LAB.netns })));
    for (const e of starts) bounded.c.push(e);
    expect(bounded.c.openCount).toBe(3);
    expect(bounded.closed.map((p) => [p.events[0].packetId, p.why])).toEqual([[1, 'evicted']]);
    bounded.c.flush();
    expect(bounded.closed.map((p) => p.why)).toEqual(['evicted', 'flush', 'flush', 'flush']);
  });
});

describe('clones', () => {
  const arp = { ethertype: 0x0806, saddr: [192, 168, 222, 2], daddr: [192, 168, 222, 3], smac: [2, 0x42, 0xc0, 0xa8, 0xde, 2], dmac: [255, 255, 255, 255, 255, 255], l4proto: 1, netns: LAB.netns };

  it('attaches the copies a flood makes to the packet they were copied from, and closes them together', () => {
    const events = throughPipe([
      { ...arp, ts: 1000n, packetId: 1n, seq: 0, kind: KIND.RX, ifindex: LAB.veth, aux: 0xffffffff82159760n },
      { ...arp, ts: 1200n, packetId: 2n, seq: 0, kind: KIND.TX_QUEUE, ifindex: 11 },
      { ...arp, ts: 1300n, packetId: 2n, seq: 1, kind: KIND.TX, ifindex: 11 },
      { ...arp, ts: 1400n, packetId: 3n, seq: 0, kind: KIND.TX, ifindex: 12 },
      // a packet with other headers is no copy
      { ...arp, daddr: [192, 168, 222, 9], ts: 1450n, packetId: 4n, seq: 0, kind: KIND.TX, ifindex: 13 },
      { ...arp, ts: 1500n, packetId: 1n, seq: 1, kind: KIND.RX, ifindex: LAB.bridge },
      { ...arp, ts: 1600n, packetId: 1n, seq: 2, kind: KIND.CONSUME, ifindex: LAB.bridge },
    ]);
    const { c, closed } = collect();
    for (const e of events) c.push(e);
    expect(closed.map((p) => [p.events[0].packetId, p.branches.map((b) => b[0].packetId)])).toEqual([[4, []], [1, [2, 3]]]);
    expect(c.openCount).toBe(0);
  });

  it('keeps a copy that arrives too long after the original apart', () => {
    const events = throughPipe([
      { ...arp, ts: 1000n, packetId: 1n, seq: 0, kind: KIND.RX, ifindex: LAB.veth, aux: 1n },
      { ...arp, ts: 1000n + 60_000_000n, packetId: 2n, seq: 0, kind: KIND.TX, ifindex: 11 },
    ]);
    const { c, closed } = collect();
    for (const e of events) c.push(e);
    expect(closed.map((p) => p.events[0].packetId)).toEqual([2]);
  });
});
