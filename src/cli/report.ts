import { Command } from 'commander';
import { toNumber, Uint64 } from '../decode';
import { bpftrace_net as pb } from '../gen/bpftrace_net';
import { OutputFile } from '../output/outputFile';
import { ReportBuilder, ReportFacts } from '../output/report';
import { reportHtml } from '../output/reportHtml';
import { contextFromHeader } from '../trace/format';
import { replayTrace } from '../trace/replay';
import { toolVersion } from './capture';

export interface ReportOptions {
  output: string;
}

/** The facts a report's header shows, as a trace file's header and trailer have them. */
export function factsFromHeader(h: pb.ITraceHeader): ReportFacts {
  const ctx = contextFromHeader(h);
  const rows = h.interfaces ?? [];
  const start = toNumber(h.startTimeUnixNs as Uint64);
  return {
    host: h.host ?? '', kernel: h.kernelRelease ?? '', backend: h.backend ?? '', bridge: h.bridge ?? '', netns: h.netns ?? '',
    filter: h.filter ?? '', mode: h.mode ?? '', startedAt: new Date(start / 1e6).toISOString(), durationS: null, lost: 0,
    links: ctx.links, ports: rows.filter((r) => r.role === 'port').map((r) => r.ifindex ?? 0),
    uplinks: rows.filter((r) => r.role === 'uplink').map((r) => r.ifindex ?? 0), rules: h.rules ?? false,
  };
}

/** Reads the traces once (several: the files of one rotated recording, in order), summing
 * as it goes; at most a sample of packets per path is kept. */
export function collectReport(files: string[]): { html: string; packets: number; paths: number; error?: Error } {
  let builder: ReportBuilder | undefined;
  let start = 0;
  let end = 0;
  let lost = 0;
  let error: Error | undefined;
  for (const file of files) {
    const result = replayTrace(file, {
      header: (h) => {
        if (!builder) {
          builder = new ReportBuilder(factsFromHeader(h));
          start = toNumber(h.startTimeUnixNs as Uint64);
        }
      },
      traversal: (t) => builder?.add(t),
    });
    if (!builder) throw result.error ?? new Error(`${file}: no trace header`);
    if (result.trailer) end = toNumber(result.trailer.endTimeUnixNs as Uint64);
    lost = Math.max(lost, result.lost);
    error ??= result.error;
  }
  builder!.setFacts({ lost, durationS: end > start ? (end - start) / 1e9 : null });
  const data = builder!.build();
  return { html: reportHtml(data, toolVersion()), packets: data.packets, paths: data.paths.length, error };
}

export function writeReport(out: string, html: string): void {
  const file = OutputFile.create(out, 'REPORT_FILE');
  try {
    file.write(Buffer.from(html));
    file.close();
    file.publish();
  } catch (err) {
    file.discard();
    throw err;
  }
}

export function printReport(file: string, opts: ReportOptions): void {
  const r = collectReport([file]);
  writeReport(opts.output, r.html);
  process.stderr.write(`wrote ${opts.output}: ${r.packets} packets on ${r.paths} paths (self-contained: it loads nothing from the network)\n`);
  if (r.error) throw r.error;
}

export function reportCommand(): Command {
  return new Command('report')
    .description('draw a trace as the bridge/netfilter diagram with the paths packets took: one self-contained HTML file')
    .argument('<trace.bnt>', 'a file written by record (or watch -w)')
    .requiredOption('-o, --output <report.html>', 'the HTML file to write')
    .addHelpText('after', `
Examples:
  bpftrace-net report trace.bnt -o report.html
  sudo bpftrace-net record br-d13c50d4c15b -w trace.bnt --report report.html`)
    .action((file: string, opts: ReportOptions) => printReport(file, opts));
}
