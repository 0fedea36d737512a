import { Command } from 'commander';
import { formatPorts } from '../output/ports';
import { requirePrivileges } from '../system/privileges';
import { describeBridge } from '../topology/links';
import { resolveNetns } from '../topology/netns';
import { describePorts, PortInfo } from '../topology/ports';

export interface PortsOptions {
  netns?: string;
  dockerHost?: string;
  json?: boolean;
}

export async function collectPorts(bridge: string, opts: PortsOptions): Promise<PortInfo[]> {
  requirePrivileges();
  return describePorts(describeBridge(resolveNetns(opts.netns), bridge), opts.dockerHost);
}

export async function printPorts(bridge: string, opts: PortsOptions): Promise<void> {
  const ports = await collectPorts(bridge, opts);
  process.stdout.write(opts.json ? `${JSON.stringify(ports, null, 2)}\n` : `${formatPorts(bridge, ports)}\n`);
}

export function portsCommand(): Command {
  return new Command('ports')
    .description('list a bridge\'s ports: state, MAC, FDB entries, hairpin, VLANs, veth peer and the container behind it')
    .argument('<bridge>', 'the bridge')
    .option('--netns <name|path>', 'the network namespace holding the bridge')
    .option('--docker-host <socket>', 'Docker Engine API socket (default: $DOCKER_HOST, /var/run/docker.sock)')
    .option('--json', 'JSON instead of a table')
    .addHelpText('after', `
Examples:
  sudo bpftrace-net ports docker0
  sudo bpftrace-net ports br-d13c50d4c15b --json | jq '.[].container.name'`)
    .action((bridge: string, opts: PortsOptions) => printPorts(bridge, opts));
}
