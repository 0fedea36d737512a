/** Where the `hooks` backend's netfilter probes go, and what reaching one
 * means. A probe sits at the start of each IPv4/IPv6 hook and just after each
 * priority the ruleset occupies there, never where nothing is registered:
 * reaching a probe means everything between it and the probe before it
 * (its `covers`) let the packet through; a drop after it happened in what the
 * next probe covers. The kernel cannot tell a netfilter program its priority,
 * so each probe of a hook is a different program of a pool (`slot`). */
import { NF_INET_HOOKS, NFPROTO, type HookName } from './hooks';
import { runsRules, usersAt, type HookUser, type Ruleset } from './ruleset';

export const PROBE_POOL = 16; // BN_PROBE_POOL in bpf/events.h
const INT_MIN = -2147483648;
const INT_MAX = 2147483647;

export interface Probe {
  family: number;
  hook: number;
  slot: number;
  /** Where it is attached (another tracer there moves it up to lastPriority). */
  priority: number;
  lastPriority: number;
  /** The priority it follows; null: the start of the hook. */
  after: number | null;
  /** The hook's users between the previous probe and this one, in order. */
  covers: HookUser[];
}

export interface ProbePlan {
  /** Kernel monotonic ns from which events are read with this plan. */
  since: number;
  ruleset: Ruleset;
  probes: Probe[];
}

function identity(p: Pick<Probe, 'family' | 'hook' | 'priority' | 'covers'>): string {
  return `${p.family}/${p.hook}/${p.priority}/${p.covers.map((u) => `${u.kind}:${u.table ?? ''}:${u.chain ?? ''}:${u.handle ?? ''}:${(u.natChains ?? []).map((c) => c.handle).join(',')}`).join('|')}`;
}

/** The probes of one hook, without slots yet. */
function probesOfHook(family: number, hook: number, users: HookUser[]): Omit<Probe, 'slot'>[] {
  // Our own probes, and other tracers', are BPF links: they run no rules and move with us.
  const real = users.filter((u) => u.kind !== 'bpf');
  // The kernel takes a BPF link strictly between INT_MIN and INT_MAX: nothing can follow INT_MAX - 1.
  let priorities = [...new Set(real.map((u) => u.priority))].filter((p) => p > INT_MIN && p < INT_MAX - 1).sort((a, b) => a - b);
  // A hook with more priorities than the pool: probe after the ones that run rules first.
  if (priorities.length > PROBE_POOL - 1) {
    const ruled = new Set(real.filter(runsRules).map((u) => u.priority));
    priorities = [...priorities.filter((p) => ruled.has(p)), ...priorities.filter((p) => !ruled.has(p))]
      .slice(0, PROBE_POOL - 1)
      .sort((a, b) => a - b);
  }
  const out: Omit<Probe, 'slot'>[] = [];
  const at = [INT_MIN, ...priorities];
  for (let i = 0; i < at.length; i++) {
    const prev = i === 0 ? null : at[i - 1];
    const after = i === 0 ? null : at[i];
    const next = i + 1 < at.length ? at[i + 1] : INT_MAX;
    const covers = real.filter((u) => (i === 0 ? u.priority === INT_MIN : u.priority > (prev ?? INT_MIN) && u.priority <= at[i]));
    out.push({ family, hook, priority: at[i] + 1, lastPriority: next - 1, after, covers });
  }
  return out;
}

/** The probes for a ruleset. Probes that stay where they were keep their slot;
 * a new one takes a slot the previous plan did not use where it can, so an
 * event of a probe being replaced is never read with its successor's meaning. */
export function planProbes(ruleset: Ruleset, since: number, previous?: ProbePlan): ProbePlan {
  const kept = new Map((previous?.probes ?? []).map((p) => [identity(p), p.slot]));
  const probes: Probe[] = [];
  for (const family of [NFPROTO.ipv4, NFPROTO.ipv6]) {
    const familyName = family === NFPROTO.ipv4 ? 'ipv4' : 'ipv6';
    for (let hook = 0; hook < NF_INET_HOOKS.length; hook++) {
      const planned = probesOfHook(family, hook, usersAt(ruleset, familyName, NF_INET_HOOKS[hook]));
      const used = new Set<number>();
      const fresh: Omit<Probe, 'slot'>[] = [];
      for (const p of planned) {
        const slot = kept.get(identity(p));
        if (slot !== undefined && !used.has(slot)) {
          used.add(slot);
          probes.push({ ...p, slot });
        } else {
          fresh.push(p);
        }
      }
      const before = new Set((previous?.probes ?? []).filter((p) => p.family === family && p.hook === hook).map((p) => p.slot));
      const free = [...Array(PROBE_POOL).keys()].filter((s) => !used.has(s));
      const order = [...free.filter((s) => !before.has(s)), ...free.filter((s) => before.has(s))];
      fresh.forEach((p, i) => probes.push({ ...p, slot: order[i] }));
    }
  }
  probes.sort((a, b) => a.family - b.family || a.hook - b.hook || a.priority - b.priority);
  return { since, ruleset, probes };
}

/** A probe found, with the plan it is part of. */
export interface FoundProbe {
  probe: Probe;
  plan: ProbePlan;
}

const probeKey = (family: number, hook: number, slot: number) => (family * 256 + hook) * 256 + slot;

/** Plans over time: the ruleset at the start and after every change. */
export class ProbeHistory {
  private readonly plans: ProbePlan[] = [];
  /** Each plan's probes by family, hook and slot: every NF event looks one up. */
  private readonly bySlot = new WeakMap<ProbePlan, Map<number, FoundProbe>>();

  constructor(plans: ProbePlan[] = []) {
    for (const p of plans) this.add(p);
  }

  add(plan: ProbePlan): void {
    this.plans.push(plan);
    this.plans.sort((a, b) => a.since - b.since);
  }

  get all(): readonly ProbePlan[] {
    return this.plans;
  }

  get latest(): ProbePlan | undefined {
    return this.plans[this.plans.length - 1];
  }

  /** The plan in force at kernel time ts. */
  planAt(ts: number): ProbePlan | undefined {
    for (let i = this.plans.length - 1; i >= 0; i--) if (this.plans[i].since <= ts) return this.plans[i];
    return this.plans[0];
  }

  /** The probe an NF event came from: its plan at that time, else an older one
   * (a probe being replaced fires until it is detached). */
  probe(family: number, hook: number, slot: number, ts: number): FoundProbe | undefined {
    const start = this.plans.indexOf(this.planAt(ts) as ProbePlan);
    const key = probeKey(family, hook, slot);
    for (let i = start; i >= 0; i--) {
      const found = this.slotsOf(this.plans[i]).get(key);
      if (found) return found;
    }
    return undefined;
  }

  private slotsOf(plan: ProbePlan): Map<number, FoundProbe> {
    let slots = this.bySlot.get(plan);
    if (!slots) {
      slots = new Map();
      // The first of a key wins, as a search in order would find it.
      for (const probe of plan.probes) {
        const key = probeKey(probe.family, probe.hook, probe.slot);
        if (!slots.has(key)) slots.set(key, { probe, plan });
      }
      this.bySlot.set(plan, slots);
    }
    return slots;
  }

  /** What runs after a probe, up to the next one (or the end of the hook). */
  static coveredAfter(plan: ProbePlan, probe: Probe): HookUser[] {
    const next = plan.probes
      .filter((p) => p.family === probe.family && p.hook === probe.hook && p.priority > probe.priority)
      .sort((a, b) => a.priority - b.priority)[0];
    if (next) return next.covers;
    const family = probe.family === NFPROTO.ipv4 ? 'ipv4' : 'ipv6';
    return usersAt(plan.ruleset, family, NF_INET_HOOKS[probe.hook] as HookName).filter(
      (u) => u.kind !== 'bpf' && u.priority > (probe.after ?? INT_MIN),
    );
  }
}

/** The attachments the native session takes. */
export function attachmentsOf(plan: ProbePlan): { family: number; hook: number; slot: number; priority: number; lastPriority: number }[] {
  return plan.probes.map((p) => ({ family: p.family, hook: p.hook, slot: p.slot, priority: p.priority, lastPriority: p.lastPriority }));
}
