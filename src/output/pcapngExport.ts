/** A trace file -> pcapng: one packet record per hook hit, with the bytes as
 * seen there, on an interface per device@hook point, annotated so that
 * `frame.packet_id == N` in Wireshark shows packet N's whole path in order. */
import { OutputFile } from './outputFile';
import { admitsPacket, type FilterProgram } from '../capture/filterProgram';
import type { ClosedPacket } from '../correlate/correlator';
import { EventKind, KernelEvent } from '../decode';
import { familyName, hookName } from '../model/hooks';
import { decidingRule } from '../model/rules';
import type { Hop, Traversal, TraversalEnd } from '../model/traversal';
import type { Link } from '../topology/links';
import { contextFromHeader } from '../trace/format';
import type { TraceFileError } from '../trace/reader';
import { replayTrace } from '../trace/replay';
import { deviceLabel, formatEnd, formatHop, formatRules, withContainer } from './text';
import {
  DIRECTION_INBOUND, DIRECTION_OUTBOUND, enhancedPacket, interfaceDescription, LINKTYPE_ETHERNET, LINKTYPE_RAW, sectionHeader,
} from './pcapng';

export interface ExportResult {
  packets: number;
  interfaces: number;
  traversals: number;
  error?: TraceFileError;
}

const KIND_POINT: Partial<Record<number, string>> = {
  [EventKind.RX]: 'rx', [EventKind.TX_QUEUE]: 'tx-queue', [EventKind.TX]: 'tx', [EventKind.DROP]: 'drop',
  [EventKind.CONSUME]: 'consume', [EventKind.RX_HANDLER]: 'rx-handler', [EventKind.BR_DECISION]: 'bridge-decision',
  [EventKind.ROUTE]: 'route',
};

const INBOUND_HOOKS = new Set(['PREROUTING', 'INPUT', 'BROUTING']);
const OUTBOUND_HOOKS = new Set(['OUTPUT', 'POSTROUTING']);

function isNetfilter(e: KernelEvent): boolean {
  return e.kind === EventKind.NF || e.kind === EventKind.NF_TABLE || e.kind === EventKind.NF_HOOK_ENTER || e.kind === EventKind.NF_HOOK_EXIT;
}

/** "bridge:nat:PREROUTING", "rx", ... */
function hookPoint(e: KernelEvent, hop: Hop | undefined): string {
  if (!isNetfilter(e)) return KIND_POINT[e.kind] ?? `kind${e.kind}`;
  const family = familyName(e.nfFamily);
  const hook = hookName(e.nfHook, e.nfFamily);
  if (e.kind === EventKind.NF_HOOK_ENTER) return `${family}:${hook}:enter`;
  if (e.kind === EventKind.NF_HOOK_EXIT) return `${family}:${hook}:exit`;
  const table = e.table || hop?.table || 'hook';
  return `${family}:${table}:${hook}`;
}

function pointText(e: KernelEvent, point: string): string {
  if (e.kind === EventKind.NF) {
    return `${familyName(e.nfFamily)} ${hookName(e.nfHook, e.nfFamily)} probe ${e.nfSlot} reached (no chain of the ruleset between it and the one before)`;
  }
  return point.replace(/:/g, ' ');
}

function direction(e: KernelEvent): number | undefined {
  if (e.kind === EventKind.RX) return DIRECTION_INBOUND;
  if (e.kind === EventKind.TX || e.kind === EventKind.TX_QUEUE) return DIRECTION_OUTBOUND;
  if (!isNetfilter(e)) return undefined;
  const hook = hookName(e.nfHook, e.nfFamily);
  return INBOUND_HOOKS.has(hook) ? DIRECTION_INBOUND : OUTBOUND_HOOKS.has(hook) ? DIRECTION_OUTBOUND : undefined;
}

class PcapngExporter {
  private readonly file: OutputFile;
  /** The section header is written: the file is a pcapng, whatever follows. */
  started = false;
  private readonly interfaces = new Map<string, number>();
  private names = new Map<number, string>();
  private netns = 0;
  private epochOffset = 0n;
  private lostReported = 0;
  private lostPending = 0;
  packets = 0;
  /** Traversals written (a view may leave some out). */
  exported = 0;

  constructor(out: string, private readonly view: ExportView = {}) {
    this.file = OutputFile.create(out, 'EXPORT_FILE');
  }

  get interfaceCount(): number {
    return this.interfaces.size;
  }

  header(h: Parameters<typeof contextFromHeader>[0], version: string): void {
    const ctx = contextFromHeader(h);
    this.netns = ctx.netns;
    this.epochOffset = BigInt(Math.round(ctx.epochOffsetNs));
    this.devices(ctx.links);
    this.file.write(sectionHeader(`bpftrace-net ${version} (${h.mode} mode, bridge ${h.bridge})`, `Linux ${h.kernelRelease}`, h.host ?? ''));
    this.started = true;
  }

  devices(links: Link[]): void {
    this.names = new Map(links.map((l) => [l.ifindex, withContainer(l.name, l.container)]));
  }

  lost(total: number): void {
    this.lostPending += Math.max(0, total - this.lostReported);
    this.lostReported = total;
  }

  private device(ifindex: number, netns: number): string {
    if (!ifindex) return 'unknown';
    return netns && netns !== this.netns ? `if${ifindex}@netns:${netns}` : this.names.get(ifindex) ?? `if${ifindex}`;
  }

  private deviceOf(e: KernelEvent): string {
    if (!isNetfilter(e)) return this.device(e.ifindex, e.netns);
    const hook = hookName(e.nfHook, e.nfFamily);
    const ins = e.physinIfindex || e.inIfindex;
    const outs = e.physoutIfindex || e.outIfindex;
    return this.device(OUTBOUND_HOOKS.has(hook) ? outs || ins : ins || outs, e.netns);
  }

  private interfaceId(name: string, linktype: number, description: string): number {
    const key = `${name}|${linktype}`;
    let id = this.interfaces.get(key);
    if (id === undefined) {
      id = this.interfaces.size;
      this.interfaces.set(key, id);
      this.file.write(interfaceDescription(linktype, 0, name, description));
    }
    return id;
  }

  traversal(t: Traversal, packet: ClosedPacket): void {
    if (this.view.dropsOnly && t.end.kind !== 'drop' && !t.branches.some((b) => b.end.kind === 'drop')) return;
    if (this.view.filter && !admitsPacket(this.view.filter, packet.events)) return;
    this.exported++;
    // A probe stands for every chain between it and the one before: its hops share its time.
    const hopsByTs = new Map<number, Hop[]>();
    for (const h of [...t.hops, ...t.branches.flatMap((b) => b.hops)]) {
      if (h.observed && !h.seenBy) hopsByTs.set(h.ts, [...(hopsByTs.get(h.ts) ?? []), h]);
    }
    const decisions = [...t.decisions];
    const label = deviceLabel(t);
    // Loss reports are counts, not points the packet passed.
    const copies = [packet.events, ...packet.branches].map((evs) => {
      const real = evs.filter((e) => e.kind !== EventKind.LOST);
      return this.view.firstLast && real.length > 2 ? [real[0], real[real.length - 1]] : real;
    });
    const blocks: Buffer[] = [];
    copies.forEach((events, copy) => {
      let prev = { src: t.src, dst: t.dst };
      events.forEach((e, i) => {
        const hops = hopsByTs.get(e.ts) ?? [];
        const hop = hops[0];
        const point = hookPoint(e, hop);
        const dev = this.deviceOf(e);
        const name = `${dev.split(' ')[0]}@${point}`;
        const linktype = e.data.length && !e.dataFromMac ? LINKTYPE_RAW : LINKTYPE_ETHERNET;
        const id = this.interfaceId(name, linktype, `${dev} at ${point.replace(/:/g, ' ')}, traced by bpftrace-net`);
        const notes: string[] = [];
        const where = copy ? `#${t.id} copy ${copy}` : `#${t.id}`;
        if (!hop) notes.push(`${where} ${pointText(e, point)} on ${dev}`);
        for (const h of hops) {
          notes.push(`${where} ${formatHop(h, prev, label).trim().replace(/\s{2,}/g, ' ')}`, ...formatRules(h).map((r) => r.trim()));
          prev = { src: h.src ?? prev.src, dst: h.dst ?? prev.dst };
        }
        while (copy === 0 && decisions.length && decisions[0].ts <= e.ts) notes.push(`* ${decisions.shift()!.text}`);
        const last = i === events.length - 1;
        if (last) notes.push(formatEnd(copy ? { ...t, end: t.branches[copy - 1]?.end ?? t.end } : t).trim());
        const frame = withVlanTag(e);
        blocks.push(enhancedPacket({
          interfaceId: id,
          timestampNs: BigInt(e.ts) + this.epochOffset,
          data: frame.data,
          originalLength: frame.originalLength,
          comment: notes.join(' | '),
          moreComments: [fieldsComment(t, copy, hop ?? (last ? dropHop(t, copy) : undefined), last ? (copy ? t.branches[copy - 1]?.end ?? t.end : t.end) : undefined)],
          direction: direction(e),
          dropCount: this.lostPending,
          packetId: t.id,
          custom: JSON.stringify({ traversal: t.id, copy, seq: e.seq, point, device: dev, hop: hop ?? null, ...(hops.length > 1 ? { hops } : {}) }),
        }));
        this.lostPending = 0;
        this.packets++;
      });
    });
    this.file.write(Buffer.concat(blocks));
  }

  /** Into place once it is a pcapng (a trace damaged later exports up to the damage, and says
   * so); an input that is no trace at all leaves an existing output as it was. */
  finish(): void {
    if (this.started) {
      this.file.close();
      this.file.publish();
    } else {
      this.file.discard();
    }
  }
}

/** Which records export writes. */
export interface ExportView {
  /** Only packets that were dropped (every hop of each). */
  dropsOnly?: boolean;
  /** One record where the packet came in and one where it left or died (TCP analysis in
   * Wireshark reads one record per hop as retransmissions). */
  firstLast?: boolean;
  /** Only packets whose first event passes this compiled tcpdump filter. */
  filter?: FilterProgram;
}

export function exportPcapng(traceFile: string, out: string, version = '', view: ExportView = {}): ExportResult {
  const exporter = new PcapngExporter(out, view);
  try {
    const result = replayTrace(traceFile, {
      header: (h) => exporter.header(h, version),
      batch: (b) => exporter.lost(b.lost),
      interfaces: (links) => exporter.devices(links),
      traversal: (t, packet) => exporter.traversal(t, packet),
    });
    return { packets: exporter.packets, interfaces: exporter.interfaceCount, traversals: exporter.exported, error: result.error };
  } finally {
    exporter.finish();
  }
}

/** The hop that dropped a copy (often deduced: the kernel's free event comes after the
 * chain that said DROP): its fields go on the record of the drop. */
function dropHop(t: Traversal, copy: number): Hop | undefined {
  const hops = copy ? t.branches[copy - 1]?.hops ?? [] : t.hops;
  return [...hops].reverse().find((h) => h.verdict === 'DROP');
}

const FIELD_VALUE = /[\s%=|]/g;

/** One machine-readable line per record, read by wireshark/bpftrace_net.lua into filterable
 * fields: `bpftrace-net: packet=12 copy=0 family=ipv4 hook=FORWARD table=filter ...`, values
 * percent-encoded where they hold spaces, '%', '=' or '|'. */
export function fieldsComment(t: Traversal, copy: number, hop: Hop | undefined, end?: TraversalEnd): string {
  const fields: [string, string | number | null | undefined][] = [['packet', t.id], ['copy', copy]];
  if (hop) {
    fields.push(['family', hop.family], ['hook', hop.hook], ['table', hop.table], ['chain', hop.chain], ['verdict', hop.verdict],
      ['in', hop.in], ['out', hop.out], ['physin', hop.physin], ['physout', hop.physout]);
    const rule = hop.rules && decidingRule(hop.rules);
    if (rule) fields.push(['rule', rule.handle === null ? `${rule.text} in ${rule.chain}` : `${rule.handle} in ${rule.chain}: ${rule.text}`]);
  }
  if (end) fields.push(['end', end.kind === 'drop' ? (end.rejected ? 'REJECTED' : 'DROPPED') : end.kind]);
  const encode = (v: string | number) => String(v).replace(FIELD_VALUE, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return `bpftrace-net: ${fields.filter(([, v]) => v !== null && v !== undefined && v !== '').map(([k, v]) => `${k}=${encode(v!)}`).join(' ')}`;
}

/** A tag the kernel held beside the packet goes back into the frame, as libpcap puts it
 * back from PACKET_AUXDATA: Wireshark then shows the VLAN as tcpdump -i would. */
export function withVlanTag(e: KernelEvent): { data: Uint8Array; originalLength: number } {
  const originalLength = e.wireLen || e.packet.ipLen;
  const { vlanProto, vlanTci } = e.packet;
  const d = e.data;
  if (!vlanProto || !e.dataFromMac || d.length < 12 || (d.length >= 14 && ((d[12] << 8) | d[13]) === vlanProto)) return { data: d, originalLength };
  const data = new Uint8Array(d.length + 4);
  data.set(d.subarray(0, 12), 0);
  data.set([vlanProto >> 8, vlanProto & 0xff, vlanTci >> 8, vlanTci & 0xff], 12);
  data.set(d.subarray(12), 16);
  return { data, originalLength: originalLength + 4 };
}
