import * as fs from 'fs';
import { native } from '../native';
import { BnError } from '../errors';

/** A network namespace: the traced one is named by --netns, or is our own. */
export interface Netns {
  /** Path of an nsfs file; undefined means the netns this process runs in. */
  path: string | undefined;
  label: string;
  inode: number;
}

const NAMED_NETNS_DIRS = ['/run/netns', '/var/run/netns'];

export function resolveNetns(arg?: string): Netns {
  if (arg === undefined || arg === '') {
    return { path: undefined, label: 'current', inode: fs.statSync('/proc/self/ns/net').ino };
  }
  const candidates = arg.includes('/') ? [arg] : NAMED_NETNS_DIRS.map((d) => `${d}/${arg}`);
  for (const path of candidates) {
    let st: fs.Stats;
    try {
      st = fs.statSync(path);
    } catch {
      continue;
    }
    // A named netns is a bind mount of nsfs; a plain file there is a leftover.
    if (st.dev === fs.statSync('/proc/self/ns/net').dev) {
      return { path, label: arg, inode: st.ino };
    }
    throw new BnError('NO_SUCH_NETNS', `${path} exists but is not a network namespace`);
  }
  throw new BnError('NO_SUCH_NETNS', `no network namespace '${arg}' (looked in ${candidates.join(', ')})`);
}

/** The program and arguments that run cmd inside the netns (nsenter keeps /sys and cgroups as they are). */
export function commandIn(ns: Netns, cmd: string, args: string[]): [string, string[]] {
  return ns.path ? ['nsenter', [`--net=${ns.path}`, cmd, ...args]] : [cmd, args];
}

/** A sysctl of the netns, or undefined when it does not exist there. */
export function readSysctl(ns: Netns, name: string): string | undefined {
  const file = `/proc/sys/${name.replace(/\./g, '/')}`;
  try {
    return ns.path ? native().readFileIn(ns.path, file).trim() : fs.readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}
