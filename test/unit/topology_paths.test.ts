/** Pure parts of container naming and of top: cgroup paths, path lines, the table. */
import { describe, expect, it } from 'vitest';
import { containerFromCgroup } from '../../src/topology/containers';
import { PathTable, pathLine } from '../../src/model/paths';
import { formatTop } from '../../src/output/top';
import type { Hop, Traversal } from '../../src/model/traversal';

const ID = 'a'.repeat(12) + '0123456789abcdef'.repeat(3) + 'b'.repeat(4);

describe('containerFromCgroup', () => {
  it('reads the runtime and id from the cgroup paths runtimes make', () => {
    expect(containerFromCgroup(`0::/system.slice/docker-${ID}.scope\n`)).toEqual({ runtime: 'docker', id: ID });
    expect(containerFromCgroup(`12:pids:/docker/${ID}\n0::/docker/${ID}\n`)).toEqual({ runtime: 'docker', id: ID });
    expect(containerFromCgroup(`0::/system.slice/containerd.service/cri-containerd-${ID}.scope\n`)).toEqual({ runtime: 'containerd', id: ID });
    expect(containerFromCgroup(`0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1b2c3d4e_1111_2222_3333_444455556666.slice/cri-containerd-${ID}.scope\n`))
      .toEqual({ runtime: 'kubernetes', id: ID, pod: '1b2c3d4e-1111-2222-3333-444455556666' });
    expect(containerFromCgroup(`0::/machine.slice/libpod-${ID}.scope\n`)).toEqual({ runtime: 'podman', id: ID });
    expect(containerFromCgroup('0::/user.slice/user-0.slice/session-1.scope\n')).toBeUndefined();
  });
});

const hop = (h: Partial<Hop>): Hop => ({
  family: 'ipv4', hook: 'PREROUTING', table: null, verdict: 'ACCEPT', in: null, out: null, physin: null, physout: null,
  src: null, dst: null, observed: true, ts: 0, ...h,
});

function traversal(hops: Hop[], end: Traversal['end']): Traversal {
  return {
    id: 1, ts: 0, time: '2026-11-26T17:00:00.000Z', netns: 1, src: '192.168.222.2', dst: '10.200.0.2', proto: 'icmp',
    summary: 'icmp echo request 192.168.222.2 > 10.200.0.2', hops, decisions: [], hookRuns: [], end, branches: [], lost: 0, missing: 0,
  };
}

describe('top', () => {
  const forwarded = traversal([
    hop({ family: 'netdev', hook: 'RX', verdict: null, in: 'veth1' }),
    hop({ table: 'raw', ct: null }), hop({ table: 'nat', ct: 'new' }),
    hop({ hook: 'FORWARD', table: 'filter', ct: 'new' }),
    hop({ family: 'netdev', hook: 'TX', verdict: null, out: 'enp4s0' }),
  ], { kind: 'tx', dev: 'enp4s0', reason: null });
  const dropped = traversal([
    hop({ family: 'netdev', hook: 'RX', verdict: null, in: 'veth1' }),
    hop({ hook: 'FORWARD', table: 'filter', verdict: 'DROP', ct: 'new' }),
  ], { kind: 'drop', dev: 'veth1', reason: 'NETFILTER_DROP' });

  it('says a path in one line: devices, hooks with their tables in order, verdicts other than ACCEPT, conntrack', () => {
    expect(pathLine(forwarded)).toBe('in veth1 > ipv4 PREROUTING[raw,nat] > ipv4 FORWARD[filter] > out enp4s0 (ct new)');
    expect(pathLine(dropped)).toBe('in veth1 > ipv4 FORWARD[filter=DROP] (ct new)');
  });

  it('turns counter snapshots into rates, busiest first, and sums drop points', () => {
    const table = new PathTable();
    table.addExemplar('00000000000000aa', forwarded);
    table.addExemplar('00000000000000bb', dropped);
    table.snapshot([{ signature: '00000000000000aa', packets: 100, bytes: 8400 }, { signature: '00000000000000bb', packets: 10, bytes: 840 }], 1000, 0);
    const s = table.snapshot([
      { signature: '00000000000000aa', packets: 300, bytes: 25200 },
      { signature: '00000000000000bb', packets: 410, bytes: 34440 },
      { signature: '00000000000000cc', packets: 5, bytes: 420 },
    ], 3000, 7);
    expect(s.paths.map((p) => [p.signature, p.rate])).toEqual([['00000000000000bb', 200], ['00000000000000aa', 100], ['00000000000000cc', 2.5]]);
    expect(s.drops).toEqual([{ where: 'DROPPED on veth1: NETFILTER_DROP', packets: 410, rate: 200 }]);
    expect(s.totalPackets).toBe(715);
    const text = formatTop(s, 2, 'br0');
    expect(text).toContain('br0: 3 paths, 715 packets, 7 lost');
    expect(text).toContain('    200       410  e.g. icmp echo request');
    expect(text).toContain('=> DROPPED on veth1: NETFILTER_DROP');
    expect(text).toContain('... 1 more paths');
    expect(text).toMatch(/DROP POINTS\n\s+200\s+410  DROPPED on veth1/);
  });
});
