import { Command } from 'commander';
import type { Traversal } from '../model/traversal';
import { formatJsonLine } from '../output/json';
import { formatTraversal } from '../output/text';
import { lossDetailText } from '../output/lossText';
import { replayTrace, ReplayResult } from '../trace/replay';
import { stdoutClosed, writeStdoutSync } from './stdout';
import { admitsPacket, compileFilter } from '../capture/filterProgram';

export interface ReplayOptions {
  json?: boolean;
  ether?: boolean;
}

/** Every traversal in the file, in the order watch would have printed them. */
/** Every traversal in the file (with a filter, those whose first event passes it, as the
 * kernel would have decided), in the order watch would have printed them. */
export function collectReplay(file: string, onTraversal: (t: Traversal) => void, stopped?: () => boolean, filter = ''): ReplayResult & { shown: number } {
  const program = filter ? compileFilter(filter) : undefined;
  let shown = 0;
  const result = replayTrace(file, {
    traversal: (t, packet) => {
      if (program && !admitsPacket(program, packet.events)) return;
      shown++;
      onTraversal(t);
    },
    stopped,
  });
  return { ...result, shown };
}

export function printReplay(file: string, filterWords: string[], opts: ReplayOptions): void {
  const out: string[] = [];
  const flush = () => {
    if (out.length) writeStdoutSync(out.join(''));
    out.length = 0;
  };
  const result = collectReplay(file, (t) => {
    if (stdoutClosed()) return;
    out.push(`${opts.json ? formatJsonLine(t) : formatTraversal(t, opts.ether)}\n`);
    if (out.length >= 256) flush();
  }, stdoutClosed, filterWords.join(' '));
  flush();
  const h = result.header;
  if (h) {
    process.stderr.write(`${result.shown} packets${filterWords.length ? ` of ${result.traversals}` : ''}, ${result.events} events, ${result.lost} lost${lossDetailText(result)}; recorded on ${h.host} (${h.kernelRelease}, ${h.backend}, ${h.mode} mode) from ${h.bridge}\n`);
  }
  if (result.error) throw result.error;
}

export function replayCommand(): Command {
  return new Command('replay')
    .description('print a recorded trace exactly as watch printed it live')
    .argument('<trace.bnt>', 'a file written by record (or watch -w)')
    .argument('[filter...]', 'a tcpdump filter expression, run on each packet as the trace kept it at its first hop')
    .option('--json', 'one JSON object per packet (JSON lines)')
    .option('-e, --ether', 'print each hop\'s Ethernet addresses')
    .addHelpText('after', `
Examples:
  bpftrace-net replay trace.bnt
  bpftrace-net replay trace.bnt 'icmp and host 192.168.222.2'
  bpftrace-net replay trace.bnt --json | jq 'select(.end.kind == "drop")'`)
    .action((file: string, filter: string[], opts: ReplayOptions) => printReplay(file, filter, opts));
}
