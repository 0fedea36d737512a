/** Which backend traces this kernel. The native side reports what loads and
 * attaches; the choice is made here. */
import { BnError } from '../errors';
import type { BackendName, ProbeResult } from '../native';

export type { BackendName };
export const BACKEND_CHOICES = ['auto', 'fentry', 'kprobe', 'hooks'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

export interface BackendSelection {
  backend: BackendName;
  why: string;
  /** The start line's part without -v: which backend, and which were passed over. */
  short: string;
}

interface Need {
  probe: ProbeResult['name'];
  feature: string;
}

const COMMON: Need[] = [
  { probe: 'btf', feature: 'kernel BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF)' },
  { probe: 'ringbuf', feature: 'BPF ring buffers (Linux 5.8+)' },
  { probe: 'tp_btf', feature: 'BTF tracepoints (tp_btf, Linux 5.5+)' },
];

/** Richest first: what each backend sees, and what it needs. */
const BACKENDS: { name: BackendName; sees: string; needs: Need[] }[] = [
  { name: 'fentry', sees: 'every hook, table and bridge decision through BPF trampolines',
    needs: [...COMMON, { probe: 'fentry', feature: 'fentry/fexit on nf_hook_slow (BPF trampolines)' }] },
  { name: 'kprobe', sees: 'every hook, table and bridge decision through kprobes',
    needs: [...COMMON, { probe: 'kprobe', feature: 'kprobes on nf_hook_slow (CONFIG_KPROBES)' }] },
  { name: 'hooks', sees: 'IPv4/IPv6 hooks through netfilter links and tracepoints; no bridge family',
    needs: [...COMMON, { probe: 'netfilter_link', feature: 'BPF netfilter links (Linux 6.4+)' }] },
];

function firstMissing(needs: Need[], probes: Map<string, ProbeResult>): string | undefined {
  for (const need of needs) {
    const p = probes.get(need.probe);
    if (!p?.ok) return `this kernel lacks ${need.feature}: ${p?.detail ?? 'not probed'}`;
  }
  return undefined;
}

export function selectBackend(choice: BackendChoice, probeResults: ProbeResult[]): BackendSelection {
  const probes = new Map(probeResults.map((p) => [p.name, p]));
  if (choice !== 'auto') {
    const b = BACKENDS.find((x) => x.name === choice)!;
    const missing = firstMissing(b.needs, probes);
    if (missing) throw new BnError('KERNEL_FEATURE', `--backend ${choice}: ${missing}`);
    return { backend: b.name, why: `${b.name} (requested): ${b.sees}`, short: `backend ${b.name} (requested)` };
  }
  const skipped: string[] = [];
  for (const b of BACKENDS) {
    const missing = firstMissing(b.needs, probes);
    if (!missing) {
      const fallback = skipped.length ? `; not ${skipped.join('; not ')}` : '';
      const passed = skipped.map((x) => x.split(',')[0]);
      return {
        backend: b.name, why: `auto picked ${b.name}: ${b.sees}${fallback}`,
        short: `backend ${b.name}${passed.length ? ` (${passed.join(', ')} not usable here; -v says why)` : ''}`,
      };
    }
    skipped.push(`${b.name}, as ${missing}`);
  }
  throw new BnError('KERNEL_FEATURE', `no backend works on this kernel: ${skipped.join('; ')}`);
}
