/** A bridge's ports as `bpftrace-net ports` lists them: state, MAC, FDB,
 * hairpin, VLANs, the veth peer and who sits behind it. */
import { attachContainers, peerName } from './containers';
import { BridgeView, ContainerInfo } from './links';
import { BnError } from '../errors';
import { native } from '../native';

export interface FdbEntry {
  mac: string;
  vlan?: number;
  flags: string[];
  state?: string;
}

export interface PortInfo {
  name: string;
  ifindex: number;
  /** The bridge's STP state of the port: forwarding, blocking, disabled ... */
  state: string;
  operstate: string;
  mac: string;
  hairpin: boolean;
  learning: boolean;
  flood: boolean;
  vlans: { vlan: number; flags: string[] }[];
  fdb: FdbEntry[];
  peer?: { ifindex: number; name?: string; netns: string };
  container?: ContainerInfo;
}

export async function describePorts(view: BridgeView, dockerHost?: string): Promise<PortInfo[]> {
  const resolution = await attachContainers(view.netns, view.links.values(), dockerHost);
  let bridge: ReturnType<ReturnType<typeof native>['bridgePortsIn']>;
  try {
    bridge = native().bridgePortsIn(view.netns.path ?? '');
  } catch (e) {
    throw new BnError('NETNS', `cannot read the bridge ports of ${view.netns.label}: ${(e as Error).message}`);
  }
  const settings = new Map(bridge.ports.map((s) => [s.ifindex, s]));
  return view.ports.map((p) => {
    const s = settings.get(p.ifindex);
    return {
      name: p.name,
      ifindex: p.ifindex,
      state: s?.state ?? 'unknown',
      operstate: s?.operstate ?? 'unknown',
      mac: p.mac ?? '',
      hairpin: s?.hairpin ?? false,
      learning: s?.learning ?? true,
      flood: s?.flood ?? true,
      vlans: s?.vlans ?? [],
      // The bridge's own entries for the port ("self" ones belong to the device, not the bridge).
      fdb: bridge.fdb.filter((f) => f.ifindex === p.ifindex && !f.flags.includes('self'))
        .map((f) => ({ mac: f.mac, vlan: f.vlan, flags: f.flags, state: f.state })),
      peer: p.peerIfindex !== undefined && p.kind === 'veth'
        ? {
          ifindex: p.peerIfindex,
          name: p.peerNetnsId === undefined ? view.links.get(p.peerIfindex)?.name : peerName(resolution, p),
          netns: p.peerNetnsId === undefined ? view.netns.label : p.container?.netns ?? `nsid ${p.peerNetnsId}`,
        }
        : undefined,
      container: p.container,
    };
  });
}
