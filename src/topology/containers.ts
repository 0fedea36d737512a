/** Who sits behind a bridge port: the veth's peer lives in another netns;
 * name that netns by what holds it (a named netns, a container of a Docker
 * engine, a Kubernetes or containerd cgroup, or plain processes). What the
 * notes' find-container-by-veth.sh did with ethtool and nsenter, without
 * either: netlink nsids and /proc. */
import * as fs from 'fs';
import { native } from '../native';
import { DockerContainerInfo, dockerContainers, dockerSocket } from './dockerApi';
import type { ContainerInfo, Link } from './links';
import type { Netns } from './netns';

const NAMED_NETNS_DIRS = ['/run/netns', '/var/run/netns'];

/** A network namespace other than the traced one, and what holds it. */
export interface NetnsHolder {
  inode: number;
  /** A file that opens it: /run/netns/NAME or /proc/PID/ns/net. */
  path: string;
  name?: string;
  pids: number[];
}

function netnsInode(path: string): number | undefined {
  try {
    return fs.statSync(path).ino;
  } catch {
    return undefined;
  }
}

/** Every netns on the host that a name or a process holds, by inode. */
export function allNetns(): Map<number, NetnsHolder> {
  const byInode = new Map<number, NetnsHolder>();
  for (const dir of NAMED_NETNS_DIRS) {
    let names: string[] = [];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const ino = netnsInode(`${dir}/${name}`);
      if (ino !== undefined && !byInode.has(ino)) byInode.set(ino, { inode: ino, path: `${dir}/${name}`, name, pids: [] });
    }
  }
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let link: string;
    try {
      link = fs.readlinkSync(`/proc/${entry}/ns/net`);
    } catch {
      continue;
    }
    const ino = Number(/net:\[(\d+)\]/.exec(link)?.[1]);
    if (!ino) continue;
    const holder = byInode.get(ino) ?? { inode: ino, path: `/proc/${entry}/ns/net`, pids: [] };
    holder.pids.push(Number(entry));
    byInode.set(ino, holder);
  }
  for (const h of byInode.values()) h.pids.sort((a, b) => a - b);
  return byInode;
}

function readFile(path: string): string {
  try {
    return fs.readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function parentPid(pid: number): number {
  return Number(/PPid:\s+(\d+)/.exec(readFile(`/proc/${pid}/status`))?.[1] ?? 0);
}

/** The first process of a netns: the one whose parent is elsewhere (a container's init). */
export function netnsInit(holder: NetnsHolder): number | undefined {
  const inside = new Set(holder.pids);
  return holder.pids.find((p) => !inside.has(parentPid(p))) ?? holder.pids[0];
}

/** Runtime and id from a cgroup path: Docker, containerd/CRI, Kubernetes pods. */
export function containerFromCgroup(cgroup: string): { runtime: string; id: string; pod?: string } | undefined {
  const id = /(?:docker-|cri-containerd-|crio-|libpod-|\/docker\/|\/)([0-9a-f]{64})(?:\.scope)?\s*$/m.exec(cgroup)?.[1];
  if (!id) return undefined;
  const pod = /pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})/.exec(cgroup)?.[1]?.replace(/_/g, '-');
  if (cgroup.includes('kubepods')) return { runtime: 'kubernetes', id, pod };
  if (/cri-containerd-|containerd/.test(cgroup)) return { runtime: 'containerd', id };
  if (/crio-/.test(cgroup)) return { runtime: 'cri-o', id };
  if (/libpod-/.test(cgroup)) return { runtime: 'podman', id };
  return { runtime: 'docker', id };
}

function comm(pid: number): string {
  return readFile(`/proc/${pid}/comm`).trim() || `pid ${pid}`;
}

/** Names what holds a netns, best source first. */
export function describeHolder(holder: NetnsHolder, docker: DockerContainerInfo[]): ContainerInfo {
  const netns = holder.name ?? `net:[${holder.inode}]`;
  const fromDocker = docker.find((c) => netnsInode(`/proc/${c.pid}/ns/net`) === holder.inode);
  if (fromDocker) {
    return { id: fromDocker.id, name: fromDocker.name, image: fromDocker.image, runtime: 'docker', pid: fromDocker.pid, netns };
  }
  const init = netnsInit(holder);
  const cg = init ? containerFromCgroup(readFile(`/proc/${init}/cgroup`)) : undefined;
  if (cg) {
    const name = cg.pod ? `pod ${cg.pod} container ${cg.id.slice(0, 12)}` : cg.id.slice(0, 12);
    return { id: cg.id, name, image: '', runtime: cg.runtime, pid: init, netns };
  }
  if (holder.name) return { id: '', name: holder.name, image: '', runtime: 'netns', pid: init, netns };
  return { id: '', name: init ? `${comm(init)}[${init}]` : netns, image: '', runtime: 'process', pid: init, netns };
}

export interface Resolution {
  /** nsid (as the traced netns numbers them) -> holder. */
  byNsid: Map<number, NetnsHolder>;
  docker: DockerContainerInfo[];
}

/** The traced netns' nsids for every other netns on the host, and the engine's containers. */
export async function resolveNetnsIds(traced: Netns, dockerHost?: string): Promise<Resolution> {
  const holders = [...allNetns().values()].filter((h) => h.inode !== traced.inode);
  const ids = native().netnsIds(traced.path ?? '', holders.map((h) => h.path));
  const byNsid = new Map<number, NetnsHolder>();
  ids.forEach((id, i) => {
    if (id >= 0) byNsid.set(id, holders[i]);
  });
  return { byNsid, docker: await dockerContainers(dockerSocket(dockerHost)) };
}

/** Fills `container` on every veth whose peer is in another netns. */
export async function attachContainers(traced: Netns, links: Iterable<Link>, dockerHost?: string): Promise<Resolution> {
  const resolution = await resolveNetnsIds(traced, dockerHost);
  nameLinks(links, resolution);
  return resolution;
}

export function nameLinks(links: Iterable<Link>, resolution: Resolution): void {
  for (const link of links) {
    if (link.peerNetnsId === undefined) continue;
    const holder = resolution.byNsid.get(link.peerNetnsId);
    if (holder) link.container = describeHolder(holder, resolution.docker);
  }
}

/** The name a veth's peer has in its own netns, asked there over netlink. */
export function peerName(resolution: Resolution, link: Link): string | undefined {
  const holder = link.peerNetnsId !== undefined ? resolution.byNsid.get(link.peerNetnsId) : undefined;
  if (!holder || link.peerIfindex === undefined) return undefined;
  try {
    return native().linksIn(holder.path).find((l) => l.ifindex === link.peerIfindex)?.name;
  } catch {
    return undefined;
  }
}
