import { Command } from 'commander';
import { selectBackend } from '../capture/backend';
import { asBnError } from '../errors';
import { native, ProbeResult } from '../native';
import { effectiveCapabilities, missingCapabilities } from '../system/privileges';
import { Netns, readSysctl, resolveNetns } from '../topology/netns';
import * as fs from 'fs';

export interface DoctorReport {
  kernel: string;
  capabilities: { have: string[]; missing: string[] };
  probes: ProbeResult[];
  tracefs: { mounted: boolean };
  netns: { label: string; inode: number; sysctls: Record<string, string | null> };
  backend: { name: string | null; why: string };
}

const SYSCTLS = [
  'net.bridge.bridge-nf-call-iptables',
  'net.bridge.bridge-nf-call-ip6tables',
  'net.bridge.bridge-nf-call-arptables',
  'net.ipv4.ip_forward',
];

const PROBE_LABELS: Record<ProbeResult['name'], string> = {
  btf: 'BTF (CO-RE)',
  ringbuf: 'BPF ring buffer',
  tp_btf: 'tp_btf tracepoints',
  fentry: 'fentry/fexit on nf_hook_slow',
  fentry_bridge: 'fentry/fexit on br_handle_frame',
  kprobe: 'kprobe on nf_hook_slow',
  netfilter_link: 'BPF netfilter links',
  tc: 'tc (clsact) programs',
};

function tracefsMounted(): boolean {
  const mounts = fs.readFileSync('/proc/mounts', 'utf8');
  return mounts.split('\n').some((l) => l.split(' ')[2] === 'tracefs');
}

function sysctlsOf(ns: Netns): Record<string, string | null> {
  return Object.fromEntries(SYSCTLS.map((name) => [name, readSysctl(ns, name) ?? null]));
}

export function collectDoctor(netnsArg?: string): DoctorReport {
  const have = effectiveCapabilities();
  const ns = resolveNetns(netnsArg);
  const missing = missingCapabilities(have);
  const probes = missing.length ? [] : native().probeKernel();
  let backend: DoctorReport['backend'];
  if (missing.length) {
    backend = { name: null, why: `cannot probe without ${missing.join(', ')}` };
  } else {
    try {
      const sel = selectBackend('auto', probes);
      backend = { name: sel.backend, why: sel.why };
    } catch (err) {
      backend = { name: null, why: asBnError(err).message };
    }
  }
  return {
    kernel: fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
    capabilities: { have: [...have], missing },
    probes,
    tracefs: { mounted: tracefsMounted() },
    netns: { label: ns.label, inode: ns.inode, sysctls: sysctlsOf(ns) },
    backend,
  };
}

export function formatDoctor(r: DoctorReport): string {
  const lines = [`kernel ${r.kernel}`];
  lines.push(`capabilities: ${r.capabilities.missing.length ? `MISSING ${r.capabilities.missing.join(', ')}` : 'ok'} (have ${r.capabilities.have.join(', ') || 'none'})`);
  for (const p of r.probes) lines.push(`  ${p.ok ? 'yes' : 'no '}  ${PROBE_LABELS[p.name].padEnd(34)} ${p.detail}`);
  lines.push(`  ${r.tracefs.mounted ? 'yes' : 'no '}  ${'tracefs mounted'.padEnd(34)} ${r.tracefs.mounted ? '' : '(mount -t tracefs nodev /sys/kernel/tracing)'}`.trimEnd());
  lines.push(`netns ${r.netns.label} (inode ${r.netns.inode}):`);
  for (const [k, v] of Object.entries(r.netns.sysctls)) lines.push(`  ${k} = ${v ?? 'absent (br_netfilter not loaded?)'}`);
  lines.push(`backend: ${r.backend.name ?? 'none'} -- ${r.backend.why}`);
  return lines.join('\n');
}

export function doctorCommand(): Command {
  return new Command('doctor')
    .description('probe what this kernel allows (by really loading programs) and which backend auto picks')
    .option('--netns <name|path>', 'report the br_netfilter sysctls of this netns')
    .option('--json', 'print the report as JSON')
    .addHelpText('after', `
Examples:
  sudo bpftrace-net doctor
  sudo bpftrace-net doctor --netns dk --json`)
    .action((opts: { netns?: string; json?: boolean }) => {
      const report = collectDoctor(opts.netns);
      process.stdout.write(`${opts.json ? JSON.stringify(report, null, 2) : formatDoctor(report)}\n`);
    });
}
