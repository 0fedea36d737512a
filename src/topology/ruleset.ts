/** The traced netns's hook table, read from the kernel (a BPF reader run from
 * a native thread inside the netns), and followed while tracing: nftables
 * ruleset notifications over netlink trigger a fresh read at once; a slow poll
 * catches what sends none (legacy iptables registering a table). */
import { native } from '../native';
import { rulesetFromEntries, type RawHookEntry, type Ruleset } from '../model/ruleset';
import type { Netns } from './netns';

/** The hook table, or a ruleset that says why it could not be read (hops then
 * name hooks only, never a table). */
export function readRuleset(netns: Netns): Ruleset {
  try {
    const t = native().hookTable(netns.path ?? '') as { entries: RawHookEntry[]; truncated: boolean };
    return rulesetFromEntries(t.entries, t.truncated);
  } catch (err) {
    return { hooks: [], unreadable: (err as Error).message };
  }
}

/** A stable text of a ruleset: equal texts, nothing changed (BPF links aside: they are tracers). */
export function rulesetKey(r: Ruleset): string {
  return JSON.stringify(r.hooks.map((h) => [h.family, h.hook, h.users.filter((u) => u.kind !== 'bpf')]).filter(([, , users]) => users.length));
}

const SETTLE_MS = 50;
const POLL_MS = 2000;

export class RulesetWatcher {
  private monitor: { stop(): void } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private poll: NodeJS.Timeout | undefined;
  private key: string;

  constructor(
    private readonly netns: Netns,
    current: Ruleset,
    private readonly onChange: (ruleset: Ruleset) => void,
    /** Any nftables notification (a rule added, a chain renamed), settled: rule texts change too. */
    private readonly onNotified?: () => void,
  ) {
    this.key = rulesetKey(current);
  }

  start(): void {
    this.monitor = new (native().LinkMonitor)(this.netns.path ?? '', () => this.schedule(), 'nftables');
    this.poll = setInterval(() => this.check(), POLL_MS);
    this.poll.unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.poll) clearInterval(this.poll);
    this.timer = this.poll = undefined;
    this.monitor?.stop();
    this.monitor = undefined;
  }

  /** An `nft -f` is a burst of messages and one commit: read once it settles. */
  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.check();
      if (this.monitor) this.onNotified?.();
    }, SETTLE_MS);
  }

  private check(): void {
    if (!this.monitor) return;
    const ruleset = readRuleset(this.netns);
    if (ruleset.unreadable) return;
    const key = rulesetKey(ruleset);
    if (key === this.key) return;
    this.key = key;
    this.onChange(ruleset);
  }
}
