/** The detail after "N lost" in the last line of watch, record and replay. */

export interface LossCounts {
  lost: number;
  lostPerCpu: number[];
  /** Packets shed whole (the ring was nearly full): in `lost` already. */
  shed?: number;
  rules?: { events: number; lost: number };
}

/** Per CPU, the packets shed whole, the rule tracer's messages. */
export function lossDetailText(stats: LossCounts): string {
  const perCpu = stats.lost ? ` (${stats.lostPerCpu.map((n, cpu) => `cpu${cpu}: ${n}`).join(', ')})` : '';
  const shed = stats.shed ? `; ${stats.shed} packets shed whole, counted in it (the ring was nearly full when they came)` : '';
  return `${perCpu}${shed}${stats.rules ? `; rule tracer: ${stats.rules.events} messages, ${stats.rules.lost} lost` : ''}`;
}
