/** Files the tool writes (trace files, pcapng), written so that root running it
 * cannot be turned against the system or against the user's own files:
 *
 * - a regular file is written under a fresh temporary name beside the target
 *   (O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600: it holds packet bytes) and renamed over
 *   the target only when published, so a run that fails before that leaves an
 *   existing file as it was, and a symlink planted at the target is replaced, never
 *   followed (the file it points to is not touched);
 * - a device node or a FIFO named as the target (/dev/null, a pipe to tshark) is
 *   written as it is: never truncated, never chmod'ed.
 */
import * as fs from 'fs';
import * as path from 'path';
import { randomBytes } from 'crypto';
import { BnError } from '../errors';

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_CLOEXEC } = fs.constants as typeof fs.constants & { O_CLOEXEC?: number };

function isStream(st: fs.Stats): boolean {
  return st.isCharacterDevice() || st.isFIFO() || st.isSocket();
}

export class OutputFile {
  private published = false;
  private closed = false;

  private constructor(
    readonly target: string,
    readonly fd: number,
    /** Where the bytes go until published; undefined for a device or FIFO. */
    private readonly temporary: string | undefined,
  ) {}

  /** Opens `target` for writing; `code` is the error code a failure carries. */
  static create(target: string, code = 'OUTPUT_FILE'): OutputFile {
    const fail = (err: unknown, what = 'cannot create'): never => {
      throw new BnError(code, `${what} ${target}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    };
    let existing: fs.Stats | undefined;
    try {
      // Followed: a device named through a symlink (/dev/stdout) is the caller's choice.
      existing = fs.statSync(target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') fail(err);
    }
    if (existing?.isDirectory()) fail(Object.assign(new Error(), { code: 'EISDIR' }));
    if (existing && isStream(existing)) {
      try {
        return new OutputFile(target, fs.openSync(target, O_WRONLY | (O_CLOEXEC ?? 0)), undefined);
      } catch (err) {
        return fail(err, 'cannot open');
      }
    }
    const dir = path.dirname(target);
    const temporary = path.join(dir, `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.part`);
    try {
      return new OutputFile(target, fs.openSync(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | (O_CLOEXEC ?? 0), 0o600), temporary);
    } catch (err) {
      return fail(err);
    }
  }

  write(bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.length) done += fs.writeSync(this.fd, bytes, done, bytes.length - done);
  }

  /** The file takes the target's name (it may go on being written through fd). */
  publish(): void {
    if (this.published || !this.temporary) return;
    fs.renameSync(this.temporary, this.target);
    this.published = true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
  }

  /** A failed run: the temporary file goes, the target stays as it was. */
  discard(): void {
    this.close();
    if (this.temporary && !this.published) fs.rmSync(this.temporary, { force: true });
  }
}
