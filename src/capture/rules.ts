/** `--rules`: nf_tables' own rule tracer, switched on for the traced bridge's
 * packets only. Adds one table per family with the owner flag (the kernel
 * deletes it when this process's netlink socket closes, however it ends):
 *
 *   table inet bpftrace_net_PID { flags owner; set watched { type ifname; }
 *     chain pre { type filter hook prerouting priority -2147483648; iifname @watched meta nftrace set 1 }
 *     chain out { type filter hook output priority -2147483648; oifname @watched meta nftrace set 1 } }
 *   table bridge bpftrace_net_PID { the same, for the bridge family }
 *
 * where `watched` holds the bridge, its ports and the uplinks, followed as they
 * change. Nothing else in the ruleset changes. Trace messages and the rules'
 * texts are read natively, inside the netns; iptables-nft-save and its siblings
 * run there too, for the rules' saved forms. */
import { execFile } from 'child_process';
import { EventEmitter } from 'events';
import { toNumber, Uint64 } from '../decode';
import { BnError } from '../errors';
import { bpftrace_net as pb } from '../gen/bpftrace_net';
import { native } from '../native';
import { parseRuleTexts, type DecodedRuleBatch, type RuleTexts } from '../model/rules';
import { addSavedForms, SAVE_TOOLS } from '../model/xtablesSave';
import { commandIn, type Netns } from '../topology/netns';
import { pcapToNft } from './nftFilter';

const PRIORITY_FIRST = -2147483648;

export function rulesTableName(pid = process.pid): string {
  return `bpftrace_net_${pid}`;
}

const quote = (name: string) => `"${name.replace(/["\\]/g, '')}"`;

/** The nft script that switches the tracer on: for the traced devices' packets, and
 * of those only what the capture filter admits where nft can say it (nftFilter.ts). */
export function rulesScript(devices: string[], table = rulesTableName(), filter = ''): string {
  const lines: string[] = [];
  for (const family of ['inet', 'bridge'] as const) {
    const match = (filter && pcapToNft(filter, family)) || [''];
    lines.push(
      `add table ${family} ${table} { flags owner; }`,
      `add set ${family} ${table} watched { type ifname; }`,
      `add chain ${family} ${table} pre { type filter hook prerouting priority ${PRIORITY_FIRST}; }`,
      ...match.map((m) => `add rule ${family} ${table} pre iifname @watched ${m ? `${m} ` : ''}meta nftrace set 1`),
      `add chain ${family} ${table} out { type filter hook output priority ${PRIORITY_FIRST}; }`,
      ...match.map((m) => `add rule ${family} ${table} out oifname @watched ${m ? `${m} ` : ''}meta nftrace set 1`),
    );
    if (devices.length) lines.push(`add element ${family} ${table} watched { ${devices.map(quote).join(', ')} }`);
  }
  return `${lines.join('\n')}\n`;
}

export function decodeRuleBatch(bytes: Uint8Array | pb.IRuleBatch): DecodedRuleBatch {
  const b = bytes instanceof Uint8Array ? pb.RuleBatch.decode(bytes) : bytes;
  return {
    lost: toNumber(b.lost as Uint64),
    drainedTo: toNumber(b.drainedTo as Uint64),
    events: (b.events ?? []).map((e) => ({
      ts: toNumber(e.ts as Uint64), id: e.id ?? 0, family: e.family ?? 0, table: e.table ?? '', chain: e.chain ?? '',
      handle: toNumber(e.handle as Uint64), type: e.type ?? 0, verdict: e.verdict ?? 0, jumpTarget: e.jumpTarget ?? '',
      iif: e.iif ?? 0, oif: e.oif ?? 0, nfproto: e.nfproto ?? 0, networkHeader: e.networkHeader ?? new Uint8Array(), policy: e.policy ?? 0,
    })),
  };
}

interface NativeRuleTracer {
  start(script: string): void;
  run(command: string): string;
  stats(): { lost: number; events: number };
  stop(): void;
}

/** Events: 'batch' (raw RuleBatch bytes), 'texts' (Map of rule texts, at the start and
 * after each refreshTexts(): the capture calls it on every ruleset notification). */
export class RuleCapture extends EventEmitter {
  private tracer: NativeRuleTracer | undefined;
  private devices: Set<string>;

  constructor(
    private readonly netns: Netns,
    devices: string[],
    /** The capture filter, narrowed into the marking rules where nft can say it. */
    private readonly filter = '',
    private readonly table = rulesTableName(),
  ) {
    super();
    this.devices = new Set(devices);
  }

  /** Adds the table; throws RULES with nft's own words when it cannot. */
  start(): void {
    const Tracer = native().RuleTracer as unknown as new (path: string, onBatch: (b: Buffer) => void) => NativeRuleTracer;
    const tracer = new Tracer(this.netns.path ?? '', (b) => this.emit('batch', b));
    try {
      tracer.start(rulesScript([...this.devices], this.table, this.filter));
    } catch (err) {
      throw new BnError('RULES', `cannot switch on nf_tables' rule tracer in netns ${this.netns.label}: ${(err as Error).message.trim().split('\n')[0]}`);
    }
    this.tracer = tracer;
    this.refreshTexts();
  }

  /** Ports came or went: the tracer follows them. */
  setDevices(devices: string[]): void {
    const next = new Set(devices);
    const add = [...next].filter((d) => !this.devices.has(d));
    const remove = [...this.devices].filter((d) => !next.has(d));
    this.devices = next;
    for (const family of ['inet', 'bridge']) {
      if (add.length) this.tracer?.run(`add element ${family} ${this.table} watched { ${add.map(quote).join(', ')} }`);
      if (remove.length) this.tracer?.run(`delete element ${family} ${this.table} watched { ${remove.map(quote).join(', ')} }`);
    }
  }

  stats(): { lost: number; events: number } {
    return this.tracer?.stats() ?? { lost: 0, events: 0 };
  }

  /** The table goes with the socket that made it. */
  stop(): void {
    this.tracer?.stop();
    this.tracer = undefined;
  }

  /** Every rule's text, rendered once by nftables' own printer, cached until the ruleset
   * changes; for iptables-nft's (and its siblings') tables also the rule as their save tool
   * prints it. Only the newest refresh emits. */
  refreshTexts(): void {
    const generation = ++this.generation;
    void this.readTexts().then((texts) => {
      if (texts && generation === this.generation && this.tracer) this.emit('texts', texts);
    });
  }

  private generation = 0;

  private listTexts(): RuleTexts | undefined {
    try {
      const listing = this.tracer?.run('list ruleset');
      return listing === undefined ? undefined : parseRuleTexts(listing);
    } catch {
      return undefined; // stopped meanwhile, or a change mid-listing: the next notification lists again
    }
  }

  /** The save tools pair rules by their order in a chain, so a save counts only when the nft
   * listing was the same before and after it (a change in between: the next notification). */
  private async readTexts(): Promise<RuleTexts | undefined> {
    const texts = this.listTexts();
    if (!texts) return undefined;
    const families = [...new Set([...texts.keys()].map((k) => k.split(' ')[0]))].filter((f) => SAVE_TOOLS[f]);
    if (!families.length) return texts;
    const saves = await Promise.all(families.map((f) => runInNetns(this.netns, SAVE_TOOLS[f], [])));
    const after = this.listTexts();
    if (!after || !sameTexts(texts, after)) return texts;
    families.forEach((family, i) => {
      if (saves[i]) addSavedForms(texts, family, saves[i]!);
    });
    return texts;
  }
}

function sameTexts(a: RuleTexts, b: RuleTexts): boolean {
  if (a.size !== b.size) return false;
  for (const [key, { text }] of a) if (b.get(key)?.text !== text) return false;
  return true;
}

/** A save tool's output; undefined when it is missing, fails or takes too long (no forms then). */
function runInNetns(netns: Netns, cmd: string, args: string[]): Promise<string | undefined> {
  const [file, argv] = commandIn(netns, cmd, args);
  return new Promise((resolve) => {
    execFile(file, argv, { encoding: 'utf8', timeout: 5000, maxBuffer: 64 << 20 }, (err, stdout) => resolve(err ? undefined : stdout));
  });
}
