/** The Docker-like topology of ../shared/KERNEL.md, built in namespaces of its
 * own: a "host" netns with the bridge, "container" netns on veths, and an
 * uplink to a "wan" netns, with MASQUERADE. Nothing touches the root netns. */
import { execFileSync } from 'child_process';
import { randomBytes } from 'crypto';
import { BnError } from '../errors';

export interface Container {
  name: string;
  netns: string;
  ip: string;
  /** With LabOptions.ipv6 only. */
  ip6?: string;
  mac: string;
  hostVeth: string;
}

export interface LabOptions {
  bridge?: string;
  containers?: number;
  /** IPv6 is off unless asked for, so that its background chatter stays out of traces. */
  ipv6?: boolean;
}

const SUBNET = '192.168.222';
// Unique local addresses (RFC 4193): never routed beyond the lab.
const SUBNET6 = 'fd00:de';
const WAN6 = 'fd00:c8';
const WAN_SUBNET = '10.200.0';
const UPLINK = 'enp4s0';

function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; code?: string; message: string };
    if (e.code === 'ENOENT') throw new BnError('MISSING_TOOL', `${cmd} is not installed`);
    throw new BnError('LAB_SETUP', `${cmd} ${args.join(' ')}: ${(e.stderr || e.message).trim().split('\n')[0]}`);
  }
}

export class DockerLikeLab {
  readonly prefix = `bn${randomBytes(3).toString('hex')}`;
  readonly host = `${this.prefix}-host`;
  readonly wan = `${this.prefix}-wan`;
  readonly bridge: string;
  readonly uplink = UPLINK;
  readonly gateway = `${SUBNET}.1`;
  readonly uplinkIp = `${WAN_SUBNET}.1`;
  readonly wanIp = `${WAN_SUBNET}.2`;
  /** Also on the wan netns, outside the uplink's subnet: reached by the default route. */
  readonly wanFarIp = '10.200.1.1';
  readonly gateway6 = `${SUBNET6}::1`;
  readonly uplinkIp6 = `${WAN6}::1`;
  readonly wanIp6 = `${WAN6}::2`;
  readonly containers: Container[] = [];
  private readonly namespaces: string[] = [];
  private readonly cleanupOnExit = () => this.destroy();
  // Ctrl-C or SIGTERM during a demo or a test run must not leave namespaces behind.
  private readonly cleanupOnSignal = (signal: NodeJS.Signals) => {
    this.destroy();
    process.kill(process.pid, signal);
  };

  constructor(private readonly opts: LabOptions = {}) {
    this.bridge = opts.bridge ?? 'br-d13c50d4c15b';
  }

  /** Runs a command in one of the lab's namespaces. */
  exec(netns: string, cmd: string, args: string[]): string {
    return run('ip', ['netns', 'exec', netns, cmd, ...args]);
  }

  create(): this {
    process.on('exit', this.cleanupOnExit);
    process.once('SIGINT', this.cleanupOnSignal);
    process.once('SIGTERM', this.cleanupOnSignal);
    try {
      this.build();
    } catch (err) {
      this.destroy();
      throw err;
    }
    return this;
  }

  private addNetns(name: string): void {
    run('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    if (!this.opts.ipv6) this.exec(name, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  }

  private build(): void {
    const h = this.host;
    this.addNetns(h);
    this.addNetns(this.wan);
    run('ip', ['-n', h, 'link', 'add', this.bridge, 'type', 'bridge']);
    run('ip', ['-n', h, 'link', 'set', this.bridge, 'address', '02:42:ed:1a:30:67']);
    run('ip', ['-n', h, 'addr', 'add', `${this.gateway}/24`, 'dev', this.bridge]);
    run('ip', ['-n', h, 'link', 'set', this.bridge, 'up']);
    if (this.opts.ipv6) run('ip', ['-n', h, 'addr', 'add', `${this.gateway6}/64`, 'dev', this.bridge, 'nodad']);

    for (let i = 0; i < (this.opts.containers ?? 2); i++) this.addContainer(i);

    run('ip', ['-n', h, 'link', 'add', UPLINK, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', this.wan]);
    run('ip', ['-n', h, 'addr', 'add', `${this.uplinkIp}/24`, 'dev', UPLINK]);
    run('ip', ['-n', h, 'link', 'set', UPLINK, 'up']);
    run('ip', ['-n', this.wan, 'addr', 'add', `${this.wanIp}/24`, 'dev', 'eth0']);
    run('ip', ['-n', this.wan, 'addr', 'add', `${this.wanFarIp}/24`, 'dev', 'eth0']);
    run('ip', ['-n', this.wan, 'link', 'set', 'eth0', 'up']);
    run('ip', ['-n', h, 'route', 'add', 'default', 'via', this.wanIp]);

    this.exec(h, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    this.exec(h, 'sysctl', ['-qw', 'net.bridge.bridge-nf-call-iptables=1']);
    this.exec(h, 'iptables', ['-t', 'nat', '-A', 'POSTROUTING', '-s', `${SUBNET}.0/24`, '-o', UPLINK, '-j', 'MASQUERADE']);
    if (this.opts.ipv6) {
      run('ip', ['-n', h, 'addr', 'add', `${this.uplinkIp6}/64`, 'dev', UPLINK, 'nodad']);
      run('ip', ['-n', this.wan, 'addr', 'add', `${this.wanIp6}/64`, 'dev', 'eth0', 'nodad']);
      run('ip', ['-n', h, '-6', 'route', 'add', 'default', 'via', this.wanIp6]);
      this.exec(h, 'sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=1']);
      this.exec(h, 'sysctl', ['-qw', 'net.bridge.bridge-nf-call-ip6tables=1']);
      this.exec(h, 'ip6tables', ['-t', 'nat', '-A', 'POSTROUTING', '-s', `${SUBNET6}::/64`, '-o', UPLINK, '-j', 'MASQUERADE']);
    }
  }

  private addContainer(i: number): void {
    const n = i + 2;
    const name = `web-${i + 1}`;
    const netns = `${this.prefix}-c${i + 1}`;
    const hostVeth = `veth${randomBytes(4).toString('hex').slice(0, 7)}`;
    const mac = `02:42:c0:a8:de:${n.toString(16).padStart(2, '0')}`;
    const ip = `${SUBNET}.${n}`;
    this.addNetns(netns);
    run('ip', ['-n', this.host, 'link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
    run('ip', ['-n', this.host, 'link', 'set', hostVeth, 'master', this.bridge, 'up']);
    run('ip', ['-n', netns, 'link', 'set', 'eth0', 'address', mac]);
    run('ip', ['-n', netns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
    run('ip', ['-n', netns, 'link', 'set', 'eth0', 'up']);
    run('ip', ['-n', netns, 'route', 'add', 'default', 'via', this.gateway]);
    let ip6: string | undefined;
    if (this.opts.ipv6) {
      ip6 = `${SUBNET6}::${n}`;
      run('ip', ['-n', netns, 'addr', 'add', `${ip6}/64`, 'dev', 'eth0', 'nodad']);
      run('ip', ['-n', netns, '-6', 'route', 'add', 'default', 'via', this.gateway6]);
    }
    this.containers.push({ name, netns, ip, ip6, mac, hostVeth });
  }

  /** ping (IPv4 or IPv6) from a lab netns; returns whether a reply came back. */
  ping(netns: string, target: string, count = 1): boolean {
    try {
      this.exec(netns, 'ping', [target.includes(':') ? '-6' : '-4', '-n', '-q', '-c', String(count), '-i', '0.2', '-W', '2', target]);
      return true;
    } catch {
      return false;
    }
  }

  /** Deletes every namespace the lab made (their devices and rules go with them). */
  destroy(): void {
    process.off('exit', this.cleanupOnExit);
    process.off('SIGINT', this.cleanupOnSignal);
    process.off('SIGTERM', this.cleanupOnSignal);
    while (this.namespaces.length) {
      const name = this.namespaces.pop() as string;
      try {
        execFileSync('ip', ['netns', 'delete', name], { stdio: 'ignore' });
      } catch {
        // already gone
      }
    }
  }
}
