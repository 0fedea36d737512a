/** Standard output that may be a pipe its reader closes (`watch | head -1`): the
 * command then stops as if interrupted, prints its summary on stderr and exits 0,
 * as tcpdump does; never an EPIPE stack trace. */
import * as fs from 'fs';

let closed = false;
const listeners: (() => void)[] = [];

process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE' && !closed) throw err;
  if (closed) return; // writes queued before the close fail too
  closed = true;
  for (const l of listeners.splice(0)) l();
});

export function stdoutClosed(): boolean {
  return closed;
}

/** Calls `stop` once, when the reader of stdout is gone. */
export function onStdoutClosed(stop: () => void): void {
  if (closed) stop();
  else listeners.push(stop);
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/** For commands that write in one synchronous loop (replay): blocks until written, and
 * returns false once the reader is gone, so the loop can stop at once instead of
 * buffering the rest of the file in memory. */
export function writeStdoutSync(text: string): boolean {
  if (closed) return false;
  const bytes = Buffer.from(text);
  let done = 0;
  while (done < bytes.length) {
    try {
      done += fs.writeSync(1, bytes, done, bytes.length - done);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') {
        Atomics.wait(pause, 0, 0, 5); // a non-blocking pipe that is full: wait for its reader
        continue;
      }
      if (code === 'EPIPE') {
        closed = true;
        return false;
      }
      throw err;
    }
  }
  return true;
}
