/** A real Docker engine (Debian's docker.io) in a network namespace of its own,
 * as ../shared/KERNEL.md describes; never the system's daemon or socket. */
import { ChildProcess, execFileSync, spawn } from 'child_process';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const DOCKER = '/usr/bin/docker';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface DockerContainer {
  name: string;
  id: string;
  ip: string;
  hostVeth: string;
}

function run(cmd: string, args: string[], input?: Buffer): string {
  return execFileSync(cmd, args, { encoding: 'utf8', input, stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
}

export class DockerEngine {
  readonly host = `bnk${randomBytes(3).toString('hex')}`;
  readonly wan = `${this.host}-wan`;
  readonly uplink = 'enp4s0';
  readonly uplinkIp = '10.200.0.1';
  readonly wanIp = '10.200.0.2';
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bn-docker-'));
  readonly sock = path.join(this.dir, 'docker.sock');
  bridge = '';
  readonly containers: DockerContainer[] = [];
  private daemon: ChildProcess | undefined;
  private readonly pidfile = path.join(this.dir, 'docker.pid');

  docker(args: string[], input?: Buffer): string {
    return run(DOCKER, ['-H', `unix://${this.sock}`, ...args], input).trim();
  }

  exec(netns: string, cmd: string, args: string[]): string {
    return run('ip', ['netns', 'exec', netns, cmd, ...args]);
  }

  async start(containers = 2): Promise<this> {
    try {
      await this.startDaemon();
      this.importBusybox();
      this.addUplink();
      this.bridge = `br-${this.docker(['network', 'create', '--subnet', '192.168.222.0/24', 'net1']).slice(0, 12)}`;
      for (let i = 1; i <= containers; i++) this.runContainer(`web-${i}`);
    } catch (err) {
      await this.stop();
      throw err;
    }
    return this;
  }

  /** ping from inside a container (busybox); true when answered. */
  ping(container: string, target: string): boolean {
    try {
      this.docker(['exec', container, 'ping', '-c', '1', '-W', '2', target]);
      return true;
    } catch {
      return false;
    }
  }

  private async startDaemon(): Promise<void> {
    run('ip', ['netns', 'add', this.host]);
    run('ip', ['netns', 'add', this.wan]);
    // nsenter, not ip netns exec: that remounts /sys and hides the cgroup mounts dockerd needs.
    const log = fs.openSync(path.join(this.dir, 'dockerd.log'), 'a');
    this.daemon = spawn('nsenter', [`--net=/var/run/netns/${this.host}`, 'dockerd',
      '--data-root', path.join(this.dir, 'data'), '--exec-root', path.join(this.dir, 'exec'),
      '--pidfile', this.pidfile, '-H', `unix://${this.sock}`, '--storage-driver', 'vfs'], { stdio: ['ignore', log, log] });
    for (let waited = 0; ; waited += 250) {
      try {
        this.docker(['version', '--format', '{{.Server.Version}}']);
        return;
      } catch {
        if (this.daemon.exitCode !== null || waited > 60_000) {
          throw new Error(`dockerd did not start: ${fs.readFileSync(path.join(this.dir, 'dockerd.log'), 'utf8').slice(-2000)}`);
        }
        await sleep(250);
      }
    }
  }

  /** An image from this machine's busybox-static: no registry is reachable. */
  private importBusybox(): void {
    const root = path.join(this.dir, 'rootfs');
    fs.mkdirSync(path.join(root, 'bin'), { recursive: true });
    fs.copyFileSync('/bin/busybox', path.join(root, 'bin', 'busybox'));
    run(path.join(root, 'bin', 'busybox'), ['--install', '-s', path.join(root, 'bin')]);
    for (const link of fs.readdirSync(path.join(root, 'bin'))) {
      if (link === 'busybox') continue;
      fs.unlinkSync(path.join(root, 'bin', link));
      fs.symlinkSync('/bin/busybox', path.join(root, 'bin', link));
    }
    const tarball = execFileSync('tar', ['-C', root, '-c', '.'], { maxBuffer: 64 << 20 });
    this.docker(['import', '-', 'bb:local'], tarball);
  }

  private addUplink(): void {
    run('ip', ['-n', this.host, 'link', 'add', this.uplink, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', this.wan]);
    run('ip', ['-n', this.host, 'addr', 'add', `${this.uplinkIp}/24`, 'dev', this.uplink]);
    run('ip', ['-n', this.host, 'link', 'set', this.uplink, 'up']);
    run('ip', ['-n', this.wan, 'addr', 'add', `${this.wanIp}/24`, 'dev', 'eth0']);
    run('ip', ['-n', this.wan, 'link', 'set', 'eth0', 'up']);
    run('ip', ['-n', this.wan, 'link', 'set', 'lo', 'up']);
    run('ip', ['-n', this.host, 'route', 'add', 'default', 'via', this.wanIp]);
  }

  /** A sleeping busybox container on a network (net1: the user-defined br-xxxx; bridge: docker0). */
  runContainer(name: string, network = 'net1'): DockerContainer {
    const id = this.docker(['run', '-d', '--name', name, '--network', network, 'bb:local', '/bin/sleep', '100000']);
    const ip = this.docker(['inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', name]);
    const iflink = Number(this.docker(['exec', name, 'cat', '/sys/class/net/eth0/iflink']));
    const links = JSON.parse(run('ip', ['-n', this.host, '-j', 'link', 'show'])) as { ifindex: number; ifname: string }[];
    const hostVeth = links.find((l) => l.ifindex === iflink)!.ifname;
    const c = { name, id, ip, hostVeth };
    if (network === 'net1') this.containers.push(c);
    return c;
  }

  inspect(name: string): { Id: string; Name: string; Config: { Image: string }; State: { Pid: number } } {
    return JSON.parse(this.docker(['inspect', name]))[0];
  }

  /** Containers first (a sleeping PID 1 ignores SIGTERM), then the daemon, its mounts, the netns. */
  async stop(): Promise<void> {
    try {
      const ids = this.docker(['ps', '-aq']).split('\n').filter(Boolean);
      if (ids.length) this.docker(['rm', '-f', ...ids]);
    } catch {
      // the daemon may not have come up
    }
    const pid = fs.existsSync(this.pidfile) ? Number(fs.readFileSync(this.pidfile, 'utf8')) : this.daemon?.pid;
    if (pid) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // gone
      }
      for (let waited = 0; waited < 20_000; waited += 200) {
        try {
          process.kill(pid, 0);
        } catch {
          break;
        }
        await sleep(200);
      }
    }
    const mounts = fs.readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1]).filter((m) => m?.startsWith(this.dir));
    for (const m of mounts.reverse()) {
      try {
        run('umount', ['-l', m]);
      } catch {
        // already gone
      }
    }
    for (const ns of [this.host, this.wan]) {
      try {
        run('ip', ['netns', 'delete', ns]);
      } catch {
        // never made
      }
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
