/** Which backend traces this kernel. The native side reports what loads and
 * attaches; the choice is made here. */
import { BnError } from '../errors';
import type { ProbeResult } from '../native';

export type BackendName = 'hooks';
export const BACKEND_CHOICES = ['auto', 'hooks'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

export interface BackendSelection {
  backend: BackendName;
  why: string;
}

const NEEDED_BY_HOOKS: { probe: ProbeResult['name']; feature: string }[] = [
  { probe: 'btf', feature: 'kernel BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF)' },
  { probe: 'ringbuf', feature: 'BPF ring buffers (Linux 5.8+)' },
  { probe: 'tp_btf', feature: 'BTF tracepoints (tp_btf, Linux 5.5+)' },
  { probe: 'netfilter_link', feature: 'BPF netfilter links (Linux 6.4+)' },
];

export function selectBackend(choice: BackendChoice, probes: ProbeResult[]): BackendSelection {
  const by = new Map(probes.map((p) => [p.name, p]));
  for (const need of NEEDED_BY_HOOKS) {
    const p = by.get(need.probe);
    if (!p?.ok) {
      throw new BnError('KERNEL_FEATURE', `this kernel lacks ${need.feature}: ${p?.detail ?? 'not probed'}`);
    }
  }
  if (choice === 'hooks') return { backend: 'hooks', why: 'requested with --backend hooks' };
  const fentry = by.get('fentry');
  const kprobe = by.get('kprobe');
  const functionTracing = fentry?.ok
    ? 'fentry works here, but this build has no fentry backend yet'
    : `fentry refused (${fentry?.detail ?? 'not probed'}); kprobe ${kprobe?.ok ? 'works, but this build has no kprobe backend yet' : `unavailable (${kprobe?.detail ?? 'not probed'})`}`;
  return { backend: 'hooks', why: `auto picked hooks (tracepoints + netfilter links): ${functionTracing}` };
}
