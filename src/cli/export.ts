import { Command } from 'commander';
import { exportPcapng, ExportResult } from '../output/pcapngExport';
import { toolVersion } from './capture';
import { compileFilter } from '../capture/filterProgram';

export interface ExportOptions {
  output: string;
  dropsOnly?: boolean;
  firstLast?: boolean;
}

export function collectExport(file: string, filter: string, opts: ExportOptions): ExportResult {
  return exportPcapng(file, opts.output, toolVersion(), {
    dropsOnly: opts.dropsOnly, firstLast: opts.firstLast, filter: filter ? compileFilter(filter) : undefined,
  });
}

export function printExport(file: string, filterWords: string[], opts: ExportOptions): void {
  const r = collectExport(file, filterWords.join(' '), opts);
  process.stderr.write(`wrote ${opts.output}: ${r.packets} packet records (${r.traversals} packets) on ${r.interfaces} device@hook interfaces\n`);
  if (r.error) throw r.error;
}

export function exportCommand(): Command {
  return new Command('export')
    .description('convert a trace file to pcapng: a packet record per hook hit, annotated, for Wireshark and tshark')
    .argument('<trace.bnt>', 'a file written by record (or watch -w)')
    .argument('[filter...]', 'a tcpdump filter expression: only packets that pass it at their first hop')
    .requiredOption('-o, --output <file.pcapng>', 'the pcapng file to write')
    .option('--drops-only', 'only packets that were dropped, every hop of each')
    .option('--first-last', 'two records per packet: where it came in, and where it left or died (one record per hop reads as retransmissions in Wireshark\'s TCP analysis)')
    .addHelpText('after', `
Examples:
  bpftrace-net export trace.bnt -o trace.pcapng
  tshark -r trace.pcapng -Y 'frame.packet_id == 12' -T fields -e frame.interface_name -e frame.comment
  tshark -X lua_script:wireshark/bpftrace_net.lua -r trace.pcapng -Y 'bpftrace_net.verdict == "DROP"'`)
    .action((file: string, filter: string[], opts: ExportOptions) => printExport(file, filter, opts));
}
