/** Decoded batches -> correlated packets -> traversals: the same steps for a
 * live capture and for a replayed trace file, so both print the same. */
import { ClosedPacket, Correlator } from '../correlate/correlator';
import { EventKind, type DecodedBatch } from '../decode';
import { buildTraversal, ModelContext } from '../model/build';
import type { DecodedRuleBatch } from '../model/rules';
import { linkRejects } from '../model/reject';
import { isIcmpError } from '../model/packet';
import type { Traversal } from '../model/traversal';

/** Traversals kept to link a late-closing rejected packet to its ICMP error. */
const RECENT = 64;
/** Without --rules, dropped packets and ICMP errors still wait this long, so that a
 * rejected packet and its answer are explained (and linked) together. */
const REJECT_HOLD_NS = 50e6;

function mayBeRejectPair(p: ClosedPacket): boolean {
  const first = p.events[0]?.packet;
  if (first && isIcmpError(first)) return true;
  return p.events.some((e) => e.kind === EventKind.DROP);
}

export interface PipelineSinks {
  traversal(t: Traversal, packet: ClosedPacket): void;
  /** The kernel's loss count grew (total since start). */
  lost?(total: number): void;
}

/** --rules: how long a closed packet waits at most for the rule tracer's messages about it
 * (they travel by netlink and another thread, the packet's events by the ring). It goes
 * sooner, as soon as the tracer says its socket was read empty after the packet's last hop. */
export const RULES_HOLD_NS = 500e6;
/** Events of closed packets waiting, at most: past this the oldest quarter is explained at
 * once (their hops without rules say why and count as missing), so a flood costs bounded
 * memory (about 1,400 packets of a dozen hops; about 20 MB of heap). Only a flood the model
 * cannot keep up with reaches it: the rule tracer's messages lag seconds behind then. */
export const MAX_HELD_EVENTS = 16384;

interface Held {
  packet: ClosedPacket;
  /** Kernel time of its last event (its clones' included). */
  lastTs: number;
  /** Its events, its clones' included. */
  events: number;
  /** Explained at the latest then, whatever came. */
  until: number;
  /** Explained not before then (a rejected packet waits for its answer). */
  soonest: number;
}

/** Closed packets waiting, in the order they closed (indices, not shift(): a flood holds thousands). */
class HeldQueue {
  private items: Held[] = [];
  private from = 0;
  /** Events of the packets waiting. */
  events = 0;

  get size(): number {
    return this.items.length - this.from;
  }

  push(h: Held): void {
    this.items.push(h);
    this.events += h.events;
  }

  /** Takes from the front while `due` says so, and at least `atLeast`. */
  take(due: (h: Held) => boolean, atLeast = 0): ClosedPacket[] {
    let end = this.from;
    while (end < this.items.length && (end - this.from < atLeast || due(this.items[end]))) end++;
    if (end === this.from) return [];
    const taken = this.items.slice(this.from, end).map((h) => h.packet);
    for (let i = this.from; i < end; i++) this.events -= this.items[i].events;
    this.from = end;
    if (this.from > 1024 && this.from * 2 > this.items.length) {
      this.items = this.items.slice(this.from);
      this.from = 0;
    }
    return taken;
  }
}

function lastTsOf(p: ClosedPacket): number {
  let last = p.events[p.events.length - 1]?.ts ?? 0;
  for (const branch of p.branches) for (const e of branch) if (e.ts > last) last = e.ts;
  return last;
}

function eventsOf(p: ClosedPacket): number {
  return p.branches.reduce((n, b) => n + b.length, p.events.length);
}

export class TraversalPipeline {
  private readonly correlator: Correlator;
  private lostSoFar = 0;
  /** --rules: packets waiting for their rule messages. */
  private readonly forRules = new HeldQueue();
  /** Dropped packets and ICMP errors, waiting for each other. */
  private readonly forAnswer = new HeldQueue();
  /** --rules: the rule tracer has delivered every message queued before this. */
  private rulesDrainedTo = 0;
  private readonly recent: Traversal[] = [];
  private latest = 0;
  traversals = 0;

  constructor(
    private ctx: ModelContext,
    idleTimeoutNs: number,
    private readonly sinks: PipelineSinks,
    /** > 0 with --rules: closed packets wait at most this long (kernel clock) for their rules. */
    private readonly holdNs = 0,
  ) {
    this.correlator = new Correlator({ netns: ctx.netns, bridgeIfindex: ctx.bridgeIfindex, idleTimeoutNs }, (packet) => {
      const answer = mayBeRejectPair(packet);
      const lastTs = lastTsOf(packet);
      if (!answer && (!this.holdNs || lastTs <= this.rulesDrainedTo)) return this.explain([packet]);
      const held: Held = {
        packet, lastTs, events: eventsOf(packet), until: this.latest + Math.max(this.holdNs, answer ? REJECT_HOLD_NS : 0),
        soonest: answer ? this.latest + REJECT_HOLD_NS : 0,
      };
      (answer ? this.forAnswer : this.forRules).push(held);
      if (this.forRules.events + this.forAnswer.events > MAX_HELD_EVENTS) this.releaseOldest();
    });
  }

  /** Packets closed together are explained together: a rejected packet and the
   * ICMP error answering it (sent from inside the rule) are linked before either goes out. */
  private explain(packets: ClosedPacket[], hurried = false): void {
    if (!packets.length) return;
    const built = packets.map((p) => buildTraversal(p.events, this.ctx, this.lostSoFar, p.branches, hurried && this.holdNs > 0));
    // Only a dropped packet is linked to anything (its ICMP error, among these and the recent).
    if (built.some((t) => t.end.kind === 'drop')) linkRejects(built, this.recent.length > RECENT ? this.recent.slice(-RECENT) : this.recent);
    packets.forEach((p, i) => {
      this.traversals++;
      this.sinks.traversal(built[i], p);
    });
    for (const t of built) this.recent.push(t);
    // Trimmed to the last RECENT now and then, not at every packet.
    if (this.recent.length >= 2 * RECENT) this.recent.splice(0, this.recent.length - RECENT);
  }

  private due(h: Held, nowNs: number): boolean {
    if (h.until <= nowNs) return true;
    return h.soonest <= nowNs && (!this.holdNs || h.lastTs <= this.rulesDrainedTo);
  }

  private release(nowNs: number): void {
    const due = (h: Held) => this.due(h, nowNs);
    this.explain(this.forRules.take(due));
    this.explain(this.forAnswer.take(due));
    this.ctx.rules?.expire(nowNs);
  }

  /** Too many waiting: the oldest quarter goes now. */
  private releaseOldest(): void {
    this.explain(this.forRules.take(() => false, Math.ceil(this.forRules.size / 4)), true);
    this.explain(this.forAnswer.take(() => false, Math.ceil(this.forAnswer.size / 4)), true);
  }

  /** --rules: what the rule tracer said; the hops it belongs to take it when explained,
   * and the packets it has said everything about go now. */
  pushRules(batch: DecodedRuleBatch): void {
    this.ctx.rules?.add(batch.events);
    const ts = batch.events.reduce((m, e) => Math.max(m, e.ts), this.latest);
    this.ctx.rules?.noteLost(batch.lost, ts);
    if (batch.drainedTo > this.rulesDrainedTo) {
      this.rulesDrainedTo = batch.drainedTo;
      this.explain(this.forRules.take((h) => this.due(h, this.latest)));
    }
  }

  /** Devices changed (a container started): later traversals are explained with this. */
  setContext(ctx: ModelContext): void {
    this.ctx = ctx;
  }

  get lost(): number {
    return this.lostSoFar;
  }

  push(batch: DecodedBatch): void {
    if (batch.lost !== this.lostSoFar) {
      this.lostSoFar = batch.lost;
      this.sinks.lost?.(batch.lost);
    }
    for (const e of batch.events) {
      if (e.ts > this.latest) this.latest = e.ts;
      this.correlator.push(e);
    }
  }

  /** Closes packets idle since before nowNs - the idle timeout (kernel clock). */
  expire(nowNs: number): void {
    if (nowNs > this.latest) this.latest = nowNs;
    this.correlator.expire(nowNs);
    this.release(nowNs);
  }

  flush(): void {
    this.correlator.flush();
    this.release(Infinity);
  }
}
