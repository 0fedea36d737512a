/** What the model needs to know about the traced netns beyond the events:
 * device names, drop reasons, kernel symbols, clocks, routes, br_netfilter.
 * Captured once at start, as plain data, so that a trace file carries it and
 * a replay elsewhere explains packets exactly as the live run did. */
import type { ModelContext } from '../model/build';
import { planProbes, ProbeHistory, type ProbePlan } from '../model/probes';
import { native } from '../native';
import { Kallsyms } from '../topology/kallsyms';
import type { BridgeNetfilter, BridgeView, Link } from '../topology/links';
import { Route, RouteTable } from '../topology/routes';
import { readRuleset } from '../topology/ruleset';

export interface ContextData {
  netns: number;
  bridgeIfindex: number;
  links: Link[];
  /** enum skb_drop_reason names (SKB_DROP_REASON_ prefix removed), by value. */
  dropReasons: string[];
  /** Add to a kernel monotonic timestamp for Unix epoch ns. */
  epochOffsetNs: number;
  brNetfilter: BridgeNetfilter;
  routes: Route[];
  /** The netns's hook table at the start and after each change, with the hooks backend's probes. */
  probePlans: ProbePlan[];
}

export function monotonicNs(): number {
  return Number(process.hrtime.bigint());
}

export function captureContextData(view: BridgeView): ContextData {
  return {
    netns: view.netns.inode,
    bridgeIfindex: view.bridge.ifindex,
    links: [...view.links.values()],
    dropReasons: native().dropReasons().map((r) => r.replace(/^SKB_DROP_REASON_/, '')),
    epochOffsetNs: Date.now() * 1e6 - monotonicNs(),
    brNetfilter: view.brNetfilter,
    routes: view.routes,
    probePlans: [planProbes(readRuleset(view.netns), 0)],
  };
}

/** symbol: kernel address -> name (live: /proc/kallsyms; replay: the file's symbol table). */
export function modelContextFrom(
  data: ContextData,
  symbol: (addr: bigint) => string | undefined,
  probes = new ProbeHistory(data.probePlans),
): ModelContext {
  const names = new Map(data.links.map((l) => [l.ifindex, l.name]));
  const byName = new Map(data.links.filter((l) => l.container).map((l) => [l.name, l]));
  const routes = RouteTable.fromRoutes(data.routes);
  return {
    netns: data.netns,
    bridgeIfindex: data.bridgeIfindex,
    deviceName: (ifindex, netns) =>
      netns === data.netns ? names.get(ifindex) ?? `if${ifindex}` : `if${ifindex}@netns:${netns}`,
    symbol,
    dropReason: (r) => data.dropReasons[r] || `reason ${r}`,
    toEpochNs: (ts) => ts + data.epochOffsetNs,
    brNetfilter: data.brNetfilter,
    probes,
    route: (dst) => routes.lookup(dst),
    deviceInfo: (name) => {
      const l = byName.get(name);
      return l?.container ? { ifindex: l.ifindex, container: l.container } : undefined;
    },
  };
}

/** `kallsyms`: the capture's one table, kept across context changes (a port came) rather than
 * read again at the next lookup after each. */
export function liveModelContext(data: ContextData, probes?: ProbeHistory, kallsyms = new Kallsyms()): ModelContext {
  return modelContextFrom(data, (addr) => kallsyms.lookup(addr), probes);
}
