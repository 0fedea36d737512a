import { Command, CommanderError } from 'commander';
import { setFlagsFromString } from 'v8';
import { asBnError } from '../errors';
import { toolVersion } from './capture';
import { demoCommand } from './demo';
import { doctorCommand } from './doctor';
import { exportCommand } from './export';
import { portsCommand } from './ports';
import { recordCommand } from './record';
import { replayCommand } from './replay';
import { reportCommand } from './report';
import { topCommand } from './top';
import { watchCommand } from './watch';
import { whoisCommand } from './whois';

export function program(): Command {
  const root = new Command('bpftrace-net')
    .description('eBPF packet-path tracer for Linux bridges and netfilter: no LOG rules, no ruleset changes')
    .version(toolVersion(), '-V, --version', 'print the version and exit')
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(str) });
  for (const cmd of [watchCommand(), topCommand(), recordCommand(), replayCommand(), exportCommand(), reportCommand(), portsCommand(), whoisCommand(), doctorCommand(), demoCommand()]) root.addCommand(cmd.exitOverride());
  return root;
}

/** V8 lets its heap grow to four times what survived the last full collection while
 * collecting is cheap: a flood's garbage then takes hundreds of MB. A third again keeps full
 * collections rare enough (the live set is bounded: held packets, queued batches). */
const HEAP_GROWING_PERCENT = 30;

/** The one place errors become output: one line on stderr and an exit code. */
export async function main(argv: string[]): Promise<void> {
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  try {
    await program().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here too, successfully.
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    const e = asBnError(err);
    process.stderr.write(`bpftrace-net: ${e.message}\n`);
    process.exitCode = e.exitCode;
  }
}
