/** --rules: the table it adds, and the capture filter said in nft where nft can say it. */
import { describe, expect, it } from 'vitest';
import { pcapToNft } from '../../src/capture/nftFilter';
import { rulesScript } from '../../src/capture/rules';
import { parseRuleTexts } from '../../src/model/rules';

describe('the capture filter in nft', () => {
  it('says conjunctions of protocols, hosts, nets and ports, both directions where pcap means either', () => {
    expect(pcapToNft('icmp', 'inet')).toEqual(['meta l4proto icmp']);
    expect(pcapToNft('icmp and src host 192.168.222.2', 'inet')).toEqual(['meta l4proto icmp ip saddr 192.168.222.2']);
    expect(pcapToNft('udp and port 53', 'bridge')).toEqual(['meta l4proto udp th sport 53', 'meta l4proto udp th dport 53']);
    expect(pcapToNft('host fd00::2 and tcp', 'inet')).toEqual(['ip6 saddr fd00::2 meta l4proto tcp', 'ip6 daddr fd00::2 meta l4proto tcp']);
    expect(pcapToNft('ip and dst net 10.0.0.0/8', 'bridge')).toEqual(['ether type ip ip daddr 10.0.0.0/8']);
    expect(pcapToNft('ip', 'inet')).toEqual(['meta nfproto ipv4']);
    // ARP never crosses an inet hook: nothing to mark there.
    expect(pcapToNft('arp', 'inet')).toEqual([]);
  });

  it('leaves what it cannot say to the BPF filter alone', () => {
    for (const f of ['icmp or udp', 'not icmp', '(icmp)', 'icmp[icmptype] = icmp-echo', 'host example.org', 'port 99999', 'icmp and', 'vlan']) {
      expect(pcapToNft(f, 'inet'), f).toBeUndefined();
    }
  });

  it('adds owner-flagged tables whose rules mark only the traced devices\' matching packets', () => {
    const script = rulesScript(['br0', 'veth1'], 'bpftrace_net_7', 'udp and port 53');
    expect(script).toContain('add table inet bpftrace_net_7 { flags owner; }');
    expect(script).toContain('add table bridge bpftrace_net_7 { flags owner; }');
    expect(script).toContain('add rule inet bpftrace_net_7 pre iifname @watched meta l4proto udp th dport 53 meta nftrace set 1');
    expect(script).toContain('add rule bridge bpftrace_net_7 out oifname @watched meta l4proto udp th sport 53 meta nftrace set 1');
    expect(script).toContain('add element bridge bpftrace_net_7 watched { "br0", "veth1" }');
    expect(rulesScript(['br0'], 'bpftrace_net_7', 'icmp or udp')).toContain('add rule inet bpftrace_net_7 pre iifname @watched meta nftrace set 1');
  });
});

describe('rule texts', () => {
  it('reads nft -a list ruleset into texts by family, table, chain and handle, counters without their values', () => {
    const texts = parseRuleTexts([
      'table ip filter { # handle 1',
      '\tchain FORWARD { # handle 1',
      '\t\ttype filter hook forward priority filter; policy drop;',
      '\t\tcounter packets 12 bytes 1008 jump DOCKER-USER # handle 4',
      '\t}',
      '}',
      'table bridge filter { # handle 2',
      '\tchain FORWARD { # handle 1',
      '\t\tip daddr 192.168.222.3 counter packets 1 bytes 84 drop # handle 3',
      '\t}',
      '}',
    ].join('\n'));
    expect([...texts]).toEqual([
      ['ip filter FORWARD 4', { text: 'counter jump DOCKER-USER' }],
      ['bridge filter FORWARD 3', { text: 'ip daddr 192.168.222.3 counter drop' }],
    ]);
  });
});
