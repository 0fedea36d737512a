/** A bridge's ports as `bpftrace-net ports` lists them: state, MAC, FDB,
 * hairpin, VLANs, the veth peer and who sits behind it. */
import { attachContainers, peerName } from './containers';
import { BridgeView, ContainerInfo } from './links';
import { Netns, runIn } from './netns';

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

interface IpLinkDetail {
  ifname: string;
  operstate?: string;
  linkinfo?: { info_slave_data?: { state?: string; hairpin?: boolean; learning?: boolean; flood?: boolean } };
}

function json<T>(ns: Netns, cmd: string, args: string[]): T {
  const out = runIn(ns, cmd, args).trim();
  return (out ? JSON.parse(out) : []) as T;
}

export async function describePorts(view: BridgeView, dockerHost?: string): Promise<PortInfo[]> {
  const resolution = await attachContainers(view.netns, view.links.values(), dockerHost);
  const details = new Map(json<IpLinkDetail[]>(view.netns, 'ip', ['-j', '-d', 'link', 'show']).map((d) => [d.ifname, d]));
  const fdb = json<{ mac: string; ifname?: string; vlan?: number; flags?: string[]; state?: string; master?: string }[]>(
    view.netns, 'bridge', ['-j', 'fdb', 'show'],
  );
  const vlans = json<{ ifname: string; vlans?: { vlan: number; flags?: string[] }[] }[]>(view.netns, 'bridge', ['-j', 'vlan', 'show']);
  return view.ports.map((p) => {
    const d = details.get(p.name);
    const slave = d?.linkinfo?.info_slave_data ?? {};
    return {
      name: p.name,
      ifindex: p.ifindex,
      state: slave.state ?? 'unknown',
      operstate: (d?.operstate ?? 'unknown').toLowerCase(),
      mac: p.mac ?? '',
      hairpin: slave.hairpin ?? false,
      learning: slave.learning ?? true,
      flood: slave.flood ?? true,
      vlans: (vlans.find((v) => v.ifname === p.name)?.vlans ?? []).map((v) => ({ vlan: v.vlan, flags: v.flags ?? [] })),
      fdb: fdb.filter((f) => f.ifname === p.name && !(f.flags ?? []).includes('self'))
        .map((f) => ({ mac: f.mac, vlan: f.vlan, flags: f.flags ?? [], state: f.state })),
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
