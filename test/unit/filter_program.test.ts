import { describe, expect, it } from 'vitest';
import { compileFilter, frameOf, runFilter } from '../../src/capture/filterProgram';
import type { PacketHeaders } from '../../src/decode';

const headers = (over: Partial<PacketHeaders>): PacketHeaders => ({
  ethertype: 0x0800, ipVersion: 4, saddr: Uint8Array.from([192, 168, 222, 2]), daddr: Uint8Array.from([10, 200, 0, 2]), l4proto: 17,
  sport: 4000, dport: 53, ttl: 64, ipLen: 60, icmpType: 0, icmpCode: 0, smac: new Uint8Array(), dmac: new Uint8Array(), ctState: 0, tcpFlags: 0, vlanProto: 0, vlanTci: 0, ...over,
});

describe('tcpdump filters on recorded packets', () => {
  it("runs libpcap's program as the kernel does, on headers rebuilt from what the kernel parsed", () => {
    const dns = compileFilter('udp port 53 and src host 192.168.222.2');
    expect(runFilter(dns, frameOf(new Uint8Array(), false, headers({})))).toBe(true);
    expect(runFilter(dns, frameOf(new Uint8Array(), false, headers({ dport: 54 })))).toBe(false);
    expect(runFilter(dns, frameOf(new Uint8Array(), false, headers({ saddr: Uint8Array.from([192, 168, 222, 3]) })))).toBe(false);
    const syn = compileFilter('tcp[tcpflags] & tcp-syn != 0');
    expect(runFilter(syn, frameOf(new Uint8Array(), false, headers({ l4proto: 6, tcpFlags: 0x02 })))).toBe(true);
    expect(runFilter(syn, frameOf(new Uint8Array(), false, headers({ l4proto: 6, tcpFlags: 0x10 })))).toBe(false);
    const echo = compileFilter('icmp[icmptype] = icmp-echo');
    expect(runFilter(echo, frameOf(new Uint8Array(), false, headers({ l4proto: 1, icmpType: 8 })))).toBe(true);
    expect(runFilter(echo, frameOf(new Uint8Array(), false, headers({ l4proto: 1, icmpType: 0 })))).toBe(false);
    const v6 = compileFilter('ip6 and udp');
    expect(runFilter(v6, frameOf(new Uint8Array(), false, headers({})))).toBe(false);
    expect(runFilter(v6, frameOf(new Uint8Array(), false, headers({ ethertype: 0x86dd, ipVersion: 6, saddr: new Uint8Array(16).fill(1), daddr: new Uint8Array(16).fill(2) })))).toBe(true);
  });

  it('reads real bytes where the trace kept them, behind a made-up Ethernet header when they start at L3', () => {
    const ip = Uint8Array.from([0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 192, 168, 222, 2, 10, 200, 0, 2, 0x0f, 0xa0, 0, 53, 0, 8, 0, 0]);
    const dns = compileFilter('udp dst port 53');
    // The parsed headers say port 99: the bytes win.
    expect(runFilter(dns, frameOf(ip, false, headers({ dport: 99 })))).toBe(true);
    expect(runFilter(compileFilter('udp dst port 99'), frameOf(ip, false, headers({ dport: 99 })))).toBe(false);
  });

  it('refuses a malformed expression in libpcap words, with the BAD_FILTER code', () => {
    expect(() => compileFilter('port eleventy')).toThrow(/bad filter 'port eleventy': /);
  });
});
