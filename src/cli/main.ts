import { Command, CommanderError } from 'commander';
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

/** The one place errors become output: one line on stderr and an exit code. */
export async function main(argv: string[]): Promise<void> {
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
