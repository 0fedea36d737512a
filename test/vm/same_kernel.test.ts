/** One kernel that has both BPF netfilter links and function tracing (Debian's
 * 6.12, BN_VM_KERNEL=6.12): the `hooks` and `fentry` backends trace the same
 * scenarios and must agree on every IPv4 hop that names a chain (family, hook,
 * table, chain, verdict), on the end and on the NAT. On a kernel without
 * netfilter links (6.1) there is nothing to compare: the suite says so. */
import * as os from 'os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerLikeLab } from '../../src/lab/dockerLike';
import type { Traversal } from '../../src/model/traversal';
import { WatchProcess } from '../support/cli';
import { findIcmp } from '../support/hops';

const [major, minor] = os.release().split('.').map(Number);
const hasNetfilterLinks = major > 6 || (major === 6 && minor >= 4);

/** What both backends see: chains that ran their rules (fentry sees no nat chain a
 * connection's later packets skip; hooks marks those consulted: false), the end, the NAT. */
function seen(t: Traversal) {
  return {
    hops: t.hops
      .filter((h) => (h.family === 'ipv4' || h.family === 'ipv6') && h.table !== null && h.consulted !== false)
      .map((h) => `${h.family} ${h.hook} ${h.tableFamily ?? '?'} ${h.table} ${h.chain} ${h.verdict}`),
    end: { kind: t.end.kind, dev: t.end.dev, reason: t.end.reason },
    nat: t.decisions.filter((d) => d.kind === 'nat').map((d) => `${d.decision} ${d.text.split(' ').slice(1, 4).join(' ')}`),
  };
}

describe.runIf(hasNetfilterLinks)('hooks and fentry on the same kernel', () => {
  let lab: DockerLikeLab;
  beforeAll(() => {
    lab = new DockerLikeLab().create();
    // A Docker-shaped ruleset: nat with a PREROUTING chain, filter FORWARD with a user chain,
    // and an nft-native inet table at a non-standard priority.
    lab.exec(lab.host, 'iptables', ['-t', 'nat', '-A', 'PREROUTING', '-p', 'tcp', '--dport', '8080', '-j', 'DNAT', '--to-destination', `${lab.containers[0].ip}:80`]);
    lab.exec(lab.host, 'iptables', ['-N', 'DOCKER-USER']);
    lab.exec(lab.host, 'iptables', ['-A', 'FORWARD', '-j', 'DOCKER-USER']);
    lab.exec(lab.host, 'nft', ['add table inet bnfw']);
    lab.exec(lab.host, 'nft', ['add chain inet bnfw fw_forward { type filter hook forward priority 10; policy accept; }']);
    for (const c of lab.containers) lab.ping(c.netns, lab.wanIp);
  });
  afterAll(() => lab?.destroy());

  async function trace(backend: string, action: () => void): Promise<Traversal[]> {
    const w = new WatchProcess([lab.bridge, "--netns", lab.host, "--json", "--backend", backend]);
    try {
      await w.ready(120_000);
      action();
      await new Promise((r) => setTimeout(r, 1500));
    } finally {
      expect(await w.stop()).toBe(0);
    }
    return w.traversals();
  }

  it('container -> wan and its reply', async () => {
    const c1 = lab.containers[0];
    const ping = () => expect(lab.ping(c1.netns, lab.wanIp)).toBe(true);
    const [hooks, fentry] = [await trace('hooks', ping), await trace('fentry', ping)];
    for (const [kind, from] of [['request', c1.ip], ['reply', lab.wanIp]] as const) {
      const a = findIcmp(hooks, kind, from);
      const b = findIcmp(fentry, kind, from);
      expect(a && b, `${kind}: ${JSON.stringify({ hooks, fentry })}`).toBeTruthy();
      expect(seen(a!)).toEqual(seen(b!));
    }
    expect(seen(findIcmp(hooks, 'request', c1.ip)!).hops).toEqual(expect.arrayContaining([
      'ipv4 FORWARD ip filter FORWARD ACCEPT', 'ipv4 FORWARD inet bnfw fw_forward ACCEPT', 'ipv4 POSTROUTING ip nat POSTROUTING ACCEPT',
    ]));
  });

  it('a drop in an inet chain at priority 10', async () => {
    const c1 = lab.containers[0];
    lab.exec(lab.host, 'nft', [`add rule inet bnfw fw_forward ip daddr ${lab.wanIp} icmp type echo-request drop`]);
    try {
      const ping = () => expect(lab.ping(c1.netns, lab.wanIp)).toBe(false);
      const a = findIcmp(await trace('hooks', ping), 'request', c1.ip)!;
      const b = findIcmp(await trace('fentry', ping), 'request', c1.ip)!;
      expect(seen(a)).toEqual(seen(b));
      expect(seen(a).hops.at(-1)).toBe('ipv4 FORWARD inet bnfw fw_forward DROP');
      expect(a.end).toMatchObject({ kind: 'drop', reason: 'NETFILTER_DROP' });
    } finally {
      lab.exec(lab.host, 'nft', ['flush chain inet bnfw fw_forward']);
    }
  });
});

describe.runIf(hasNetfilterLinks)('--rules on both backends of the same kernel', () => {
  let lab: DockerLikeLab;
  beforeAll(() => {
    lab = new DockerLikeLab().create();
    lab.exec(lab.host, 'iptables', ['-N', 'DOCKER-USER']);
    lab.exec(lab.host, 'iptables', ['-A', 'FORWARD', '-j', 'DOCKER-USER']);
    lab.exec(lab.host, 'iptables', ['-A', 'DOCKER-USER', '-s', lab.containers[0].ip, '-p', 'icmp', '-j', 'DROP']);
    lab.ping(lab.containers[1].netns, lab.wanIp);
  });
  afterAll(() => lab?.destroy());

  it('name the same rules, by handle, through the jump, for the same drop', async () => {
    const c1 = lab.containers[0];
    const rulesOf = async (backend: string) => {
      const w = new WatchProcess([lab.bridge, '--netns', lab.host, '--json', '--backend', backend, '--rules']);
      try {
        await w.ready(120_000);
        expect(lab.ping(c1.netns, lab.wanIp)).toBe(false);
        await new Promise((r) => setTimeout(r, 2000));
      } finally {
        expect(await w.stop()).toBe(0);
      }
      const t = findIcmp(w.traversals(), 'request', c1.ip)!;
      expect(t, w.stdout).toBeDefined();
      return { rules: t.hops.flatMap((h) => (h.rules ?? []).map((r) => `${h.hook} ${h.table} ${r.chain} ${r.handle} ${r.verdict}`)), end: t.end.rule };
    };
    const hooks = await rulesOf('hooks');
    const fentry = await rulesOf('fentry');
    expect(hooks.rules).toEqual(fentry.rules);
    expect(hooks.rules.at(-1)).toMatch(/^FORWARD filter DOCKER-USER \d+ drop$/);
    expect(hooks.end).toEqual(fentry.end);
  });
});

describe.skipIf(hasNetfilterLinks)('a kernel without netfilter links', () => {
  it('has no hooks backend to compare with', () => {
    expect(hasNetfilterLinks).toBe(false);
  });
});
