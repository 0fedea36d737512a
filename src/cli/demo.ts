import { Command } from 'commander';
import { LiveCapture } from '../capture/live';
import { selectBackend } from '../capture/backend';
import { DockerLikeLab } from '../lab/dockerLike';
import type { Traversal } from '../model/traversal';
import { native } from '../native';
import { formatJsonLine } from '../output/json';
import { formatTraversal } from '../output/text';
import { requirePrivileges } from '../system/privileges';
import { describeBridge } from '../topology/links';
import { attachContainers } from '../topology/containers';
import { resolveNetns } from '../topology/netns';

const SETTLE_MS = 500;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Builds the lab, traces its bridge while containers ping the wan and each
 * other, and returns what was seen. The lab is always removed. */
export async function collectDemo(say: (line: string) => void): Promise<Traversal[]> {
  requirePrivileges();
  const backend = selectBackend('auto', native().probeKernel());
  const lab = new DockerLikeLab().create();
  const seen: Traversal[] = [];
  try {
    const [c1, c2] = lab.containers;
    say(`lab: bridge ${lab.bridge} in netns ${lab.host}; ${c1.name} ${c1.ip} on ${c1.hostVeth}, ${c2.name} ${c2.ip} on ${c2.hostVeth}; uplink ${lab.uplink} -> wan ${lab.wanIp} (MASQUERADE)`);
    say(backend.why);
    const view = describeBridge(resolveNetns(lab.host), lab.bridge);
    await attachContainers(view.netns, view.links.values());
    const capture = new LiveCapture(view, { backend: backend.backend, idleTimeoutMs: 1000 });
    capture.on('traversal', (t: Traversal) => seen.push(t));
    await capture.start();
    try {
      say(`${c1.name} pings the wan (${lab.wanIp}) and ${c2.name} (${c2.ip})`);
      lab.ping(c1.netns, lab.wanIp, 1);
      lab.ping(c1.netns, c2.ip, 1);
      await sleep(SETTLE_MS);
    } finally {
      const stats = await capture.stop();
      say(`${stats.traversals} packets, ${stats.events} events, ${stats.lost} lost`);
    }
  } finally {
    lab.destroy();
  }
  return seen.sort((a, b) => a.ts - b.ts);
}

export function demoCommand(): Command {
  return new Command('demo')
    .description('build a Docker-like bridge in namespaces of its own, trace pings across it, show them, clean up')
    .option('--json', 'one JSON object per packet (JSON lines)')
    .addHelpText('after', `
Examples:
  sudo bpftrace-net demo
  sudo bpftrace-net demo --json | jq .hops`)
    .action(async (opts: { json?: boolean }) => {
      const traversals = await collectDemo((line) => process.stderr.write(`${line}\n`));
      for (const t of traversals) process.stdout.write(`${opts.json ? formatJsonLine(t) : `${formatTraversal(t)}\n`}\n`);
    });
}
