import { BnError } from '../errors';
import type { ContainerInfo } from '../model/traversal';
import { native } from '../native';
import { Netns, readSysctl } from './netns';
import { Route, RouteTable } from './routes';

export type { ContainerInfo };

export interface Link {
  ifindex: number;
  name: string;
  kind: string;           // "bridge", "veth", "" for physical devices ...
  master?: string;        // the bridge (or bond) this link is enslaved to
  mac?: string;
  peerIfindex?: number;   // veth peer (possibly in another netns)
  peerNetnsId?: number;
  /** Who sits at the other end of a port (veth), where known. */
  container?: ContainerInfo;
}

/** Every link of the netns, read over netlink from a thread inside it. */
export function listLinks(ns: Netns): Link[] {
  let rows: ReturnType<ReturnType<typeof native>['linksIn']>;
  try {
    rows = native().linksIn(ns.path ?? '');
  } catch (err) {
    throw new BnError('NETNS', `cannot list the links of netns ${ns.label}: ${(err as Error).message}`);
  }
  const names = new Map(rows.map((r) => [r.ifindex, r.name]));
  return rows.map((r) => ({
    ifindex: r.ifindex,
    name: r.name,
    kind: r.kind ?? '',
    master: r.master ? names.get(r.master) : undefined,
    mac: r.mac,
    peerIfindex: r.link,
    peerNetnsId: r.linkNetnsid,
  }));
}

/** br_netfilter's switches in the traced netns: undefined where br_netfilter is not loaded. */
export interface BridgeNetfilter {
  iptables: boolean | undefined;
  ip6tables: boolean | undefined;
}

export interface BridgeView {
  netns: Netns;
  brNetfilter: BridgeNetfilter;
  bridge: Link;
  ports: Link[];
  uplinks: Link[];
  links: Map<number, Link>;
  /** The main routing table, read with the links. */
  routes: Route[];
}

/** The port a container (by name, an id prefix of 4 or more, or a netns name) sits behind. */
export function containerPortOf(view: BridgeView, name: string): Link | undefined {
  return view.ports.find((p) => p.container && (p.container.name === name || (name.length >= 4 && p.container.id.startsWith(name)) || p.container.netns === name));
}

/** The devices whose packets start a traversal: the bridge, its ports and the uplinks,
 * or with --container only that container's port (none while it is gone). */
export function tracedDevices(view: BridgeView, container?: string): Link[] {
  if (container === undefined) return [view.bridge, ...view.ports, ...view.uplinks];
  const port = containerPortOf(view, container);
  return port ? [port] : [];
}

/** The bridge to trace, its ports and uplinks, or a one-line reason why not. */
export function describeBridge(ns: Netns, name: string, extraUplinks: string[] = []): BridgeView {
  const all = listLinks(ns);
  const bridge = all.find((l) => l.name === name);
  const bridges = all.filter((l) => l.kind === 'bridge').map((l) => l.name);
  const hint = bridges.length ? `bridges here: ${bridges.join(', ')}` : 'there is no bridge in this netns';
  if (!bridge) throw new BnError('UNKNOWN_INTERFACE', `no interface '${name}' in netns ${ns.label} (${hint})`);
  if (bridge.kind !== 'bridge') {
    throw new BnError('NOT_A_BRIDGE', `${name} is not a bridge (it is ${bridge.kind || 'a physical device'}; ${hint})`);
  }
  const routes = RouteTable.load(ns, all).routes();
  // The devices that carry the netns' default routes: where routed traffic leaves.
  const defaultDevs = routes.filter((r) => r.prefix === 'default' && r.dev).map((r) => r.dev!);
  const uplinkNames = new Set([...defaultDevs, ...extraUplinks]);
  for (const u of extraUplinks) {
    if (!all.some((l) => l.name === u)) throw new BnError('UNKNOWN_INTERFACE', `no uplink interface '${u}' in netns ${ns.label}`);
  }
  const flag = (name: string) => {
    const v = readSysctl(ns, `net.bridge.${name}`);
    return v === undefined ? undefined : v === '1';
  };
  return {
    netns: ns,
    brNetfilter: { iptables: flag('bridge-nf-call-iptables'), ip6tables: flag('bridge-nf-call-ip6tables') },
    bridge,
    ports: all.filter((l) => l.master === name),
    uplinks: all.filter((l) => uplinkNames.has(l.name) && l.name !== name),
    links: new Map(all.map((l) => [l.ifindex, l])),
    routes,
  };
}
