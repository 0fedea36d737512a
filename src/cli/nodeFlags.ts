/** The flags node runs the CLI with: bin/bpftrace-net.js's shebang says them (a test holds the
 * two together), and the tests and the bench start it with them too.
 *
 * --max-semi-space-size: a flood is millions of short-lived objects (events, hops), and a batch's
 * events all live until the batch is explained; a larger young generation lets them die young
 * instead of being scavenged again and again. Measured replaying a recorded flood (2.45 M events):
 * GC pauses 499 -> 299 ms and scavenges 245 -> 131 (one run each), 0-10 % faster over alternating
 * runs (within this machine's noise), 45 MB more peak RSS. 32 MB was no faster and pushed
 * `watch --rules` at a flood past 300 MB. */
export const NODE_FLAGS = ['--max-semi-space-size=24'];
