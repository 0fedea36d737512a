import { Command } from 'commander';
import { BnError } from '../errors';
import { containerText } from '../output/ports';
import { requirePrivileges } from '../system/privileges';
import { allNetns, attachContainers, describeHolder, peerName, Resolution } from '../topology/containers';
import { ContainerInfo, Link, listLinks } from '../topology/links';
import { Netns, resolveNetns } from '../topology/netns';

export interface WhoisOptions {
  netns?: string;
  dockerHost?: string;
  json?: boolean;
}

/** One answer: a host-side veth and what is behind it. */
export interface WhoisAnswer {
  veth: string;
  ifindex: number;
  bridge?: string;
  peer?: { ifindex: number; name?: string };
  container?: ContainerInfo;
}

function answer(link: Link, resolution: Resolution): WhoisAnswer {
  return {
    veth: link.name, ifindex: link.ifindex, bridge: link.master,
    peer: link.peerIfindex !== undefined ? { ifindex: link.peerIfindex, name: peerName(resolution, link) } : undefined,
    container: link.container,
  };
}

/** `whois vethX`: what is behind it; `whois web-1` (a container name, id, named netns or pid): which veths lead to it. */
export async function collectWhois(name: string, opts: WhoisOptions): Promise<WhoisAnswer[]> {
  requirePrivileges();
  const ns: Netns = resolveNetns(opts.netns);
  const links = listLinks(ns);
  const resolution = await attachContainers(ns, links, opts.dockerHost);
  const link = links.find((l) => l.name === name);
  if (link) {
    if (link.peerNetnsId === undefined) {
      throw new BnError('NOT_A_PORT', `${name} has no peer in another network namespace (it is ${link.kind || 'a physical device'})`);
    }
    return [answer(link, resolution)];
  }
  // The reverse: every netns holder that answers to the name, and the veths whose peers live there.
  const matches = (c: ContainerInfo) =>
    c.name === name || (name.length >= 4 && c.id.startsWith(name)) || c.netns === name || String(c.pid) === name;
  const found = links.filter((l) => l.container && matches(l.container));
  if (found.length) return found.map((l) => answer(l, resolution));
  const elsewhere = [...allNetns().values()].map((h) => describeHolder(h, resolution.docker)).find(matches);
  if (elsewhere) {
    throw new BnError('NOT_FOUND', `${name} (${containerText(elsewhere)}) has no veth peer in netns ${ns.label}`);
  }
  throw new BnError('NOT_FOUND', `no interface, container, named netns or pid '${name}' (looked in netns ${ns.label})`);
}

function formatAnswer(a: WhoisAnswer): string {
  const lines = [`${a.veth} (ifindex ${a.ifindex})${a.bridge ? `: port of ${a.bridge}` : ''}`];
  if (a.peer) lines.push(`  peer: ${a.peer.name ?? '?'} (ifindex ${a.peer.ifindex})${a.container ? ` in netns ${a.container.netns}` : ''}`);
  if (a.container) {
    const c = a.container;
    lines.push(`  ${c.runtime === 'netns' ? 'netns' : c.runtime === 'process' ? 'process' : 'container'}: ${c.name}${c.id ? ` (id ${c.id.slice(0, 12)})` : ''}`);
    if (c.image) lines.push(`  image: ${c.image}`);
    if (c.pid) lines.push(`  pid: ${c.pid}`);
    lines.push(`  runtime: ${c.runtime}`);
  }
  return lines.join('\n');
}

export async function printWhois(name: string, opts: WhoisOptions): Promise<void> {
  const answers = await collectWhois(name, opts);
  process.stdout.write(opts.json ? `${JSON.stringify(answers, null, 2)}\n` : `${answers.map(formatAnswer).join('\n')}\n`);
}

export function whoisCommand(): Command {
  return new Command('whois')
    .description('which container is behind a veth, or which veth leads to a container (name, id, named netns or pid)')
    .argument('<veth|container>', 'a host-side interface, or a container name, id prefix, named netns or pid')
    .option('--netns <name|path>', 'the network namespace of the host side (default: this process\'s)')
    .option('--docker-host <socket>', 'Docker Engine API socket (default: $DOCKER_HOST, /var/run/docker.sock)')
    .option('--json', 'JSON')
    .addHelpText('after', `
Examples:
  sudo bpftrace-net whois vethdcc08d7
  sudo bpftrace-net whois web-1`)
    .action((name: string, opts: WhoisOptions) => printWhois(name, opts));
}
