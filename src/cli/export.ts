import { Command } from 'commander';
import { exportPcapng, ExportResult } from '../output/pcapngExport';
import { toolVersion } from './capture';

export interface ExportOptions {
  output: string;
}

export function collectExport(file: string, opts: ExportOptions): ExportResult {
  return exportPcapng(file, opts.output, toolVersion());
}

export function printExport(file: string, opts: ExportOptions): void {
  const r = collectExport(file, opts);
  process.stderr.write(`wrote ${opts.output}: ${r.packets} packet records (${r.traversals} packets) on ${r.interfaces} device@hook interfaces\n`);
  if (r.error) throw r.error;
}

export function exportCommand(): Command {
  return new Command('export')
    .description('convert a trace file to pcapng: a packet record per hook hit, annotated, for Wireshark and tshark')
    .argument('<trace.bnt>', 'a file written by record (or watch -w)')
    .requiredOption('-o, --output <file.pcapng>', 'the pcapng file to write')
    .addHelpText('after', `
Examples:
  bpftrace-net export trace.bnt -o trace.pcapng
  tshark -r trace.pcapng -Y 'frame.packet_id == 12' -T fields -e frame.interface_name -e frame.comment`)
    .action((file: string, opts: ExportOptions) => printExport(file, opts));
}
