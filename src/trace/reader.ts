/** Reads a trace file frame by frame, in bounded memory. Whatever is wrong
 * with a file is reported at its byte offset, after every valid frame before
 * it was handed out: a cut-short recording still replays up to the cut. */
import * as fs from 'fs';
import { BnError } from '../errors';
import { bpftrace_net as pb } from '../gen/bpftrace_net';
import { MAX_FRAME_BYTES, TRACE_FORMAT_VERSION, TRACE_MAGIC } from './format';
import { readVarint } from '../wire';

export class TraceFileError extends BnError {
  constructor(
    code: 'TRACE_TRUNCATED' | 'TRACE_CORRUPT' | 'NOT_A_TRACE',
    readonly file: string,
    readonly offset: number,
    what: string,
  ) {
    super(code, `${file}: ${code === 'TRACE_TRUNCATED' ? 'truncated' : code === 'NOT_A_TRACE' ? 'not a bpftrace-net trace' : 'corrupt'} at byte ${offset}: ${what}`);
  }
}

export interface Frame {
  offset: number;
  frame: pb.TraceFrame;
  /** A batch frame's Batch bytes (or a records frame's RecordBatch bytes), left for the fast decoder (src/wire.ts). */
  batch?: Uint8Array;
  /** The batch is a RecordBatch (packets mode, format 2). */
  records?: boolean;
  /** Where those bytes start in the file. */
  batchOffset?: number;
}

/** The one-byte tag each frame body starts with (field number << 3 | length-delimited). */
const TAG = {
  header: 0x0a, batch: 0x12, loss: 0x1a, symbols: 0x22, trailer: 0x2a, interfaces: 0x32, probes: 0x3a, rules: 0x42, ruleTexts: 0x4a, records: 0x52,
} as const;
const CHUNK = 4 << 20;

export class TraceReader {
  private readonly fd: number;
  readonly size: number;
  private buf = Buffer.alloc(0);
  private bufStart = 0;

  constructor(readonly file: string) {
    try {
      this.fd = fs.openSync(file, 'r');
      this.size = fs.fstatSync(this.fd).size;
    } catch (err) {
      throw new BnError('TRACE_OPEN', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }

  close(): void {
    fs.closeSync(this.fd);
  }

  /** Bytes [offset, offset + n) of the file, or fewer at its end. */
  private bytes(offset: number, n: number): Buffer {
    const end = Math.min(offset + n, this.size);
    if (offset < this.bufStart || end > this.bufStart + this.buf.length) {
      const want = Math.max(end - offset, CHUNK);
      const buf = Buffer.allocUnsafe(Math.min(want, this.size - offset));
      let got = 0;
      while (got < buf.length) {
        const n = fs.readSync(this.fd, buf, got, buf.length - got, offset + got);
        if (n === 0) break;
        got += n;
      }
      this.buf = buf.subarray(0, got);
      this.bufStart = offset;
    }
    return this.buf.subarray(offset - this.bufStart, end - this.bufStart);
  }

  /** Every frame in order. `decode` picks which frame kinds are decoded (others
   * come back empty but checked for length), so a scan for symbols stays cheap. */
  *frames(decode: (tag: number) => boolean = () => true): Generator<Frame> {
    let offset = 0;
    let sawTrailer = false;
    if (this.size === 0) throw new TraceFileError('NOT_A_TRACE', this.file, 0, 'the file is empty; expected the trace header');
    while (offset < this.size) {
      if (sawTrailer) throw new TraceFileError('TRACE_CORRUPT', this.file, offset, 'data after the trailer');
      const head = this.bytes(offset, 10);
      const read = readVarint(head, 0, head.length, 8);
      if (read === 'truncated' && head.length < 8) {
        throw new TraceFileError('TRACE_TRUNCATED', this.file, offset, 'expected a frame length (varint), the file ends inside it');
      }
      if (typeof read === 'string') throw new TraceFileError('TRACE_CORRUPT', this.file, offset, 'expected a frame length, found an overlong varint');
      const len = read.value;
      const bodyAt = offset + read.next;
      if (len === 0 || len > MAX_FRAME_BYTES) {
        throw new TraceFileError('TRACE_CORRUPT', this.file, offset, `expected a frame length of 1 to ${MAX_FRAME_BYTES} bytes, found ${len}`);
      }
      if (bodyAt + len > this.size) {
        throw new TraceFileError('TRACE_TRUNCATED', this.file, offset,
          `the frame here declares ${len} bytes but only ${this.size - bodyAt} remain`);
      }
      const body = this.bytes(bodyAt, len);
      const tag = body[0];
      if (offset === 0 && tag !== TAG.header) {
        throw new TraceFileError('NOT_A_TRACE', this.file, 0, 'expected the trace header frame first');
      }
      if (!Object.values(TAG).includes(tag as never)) {
        throw new TraceFileError('TRACE_CORRUPT', this.file, bodyAt, `expected a frame kind (${Object.keys(TAG).join(', ')}), found tag 0x${tag.toString(16)}`);
      }
      let frame: pb.TraceFrame;
      if (tag === TAG.batch || tag === TAG.records) {
        const { value, next } = innerLength(body, this.file, bodyAt);
        yield {
          offset, frame: pb.TraceFrame.create(), batch: decode(tag) ? body.subarray(next, next + value) : undefined, batchOffset: bodyAt + next,
          records: tag === TAG.records,
        };
        offset = bodyAt + len;
        continue;
      }
      if (decode(tag) || tag === TAG.header || tag === TAG.trailer) {
        try {
          frame = pb.TraceFrame.decode(body);
        } catch (err) {
          throw new TraceFileError('TRACE_CORRUPT', this.file, bodyAt, `expected a valid frame: ${(err as Error).message}`);
        }
      } else {
        frame = pb.TraceFrame.create();
      }
      if (offset === 0) checkHeader(this.file, frame);
      else if (frame.header) throw new TraceFileError('TRACE_CORRUPT', this.file, offset, 'a second header frame');
      if (frame.trailer) sawTrailer = true;
      yield { offset, frame };
      offset = bodyAt + len;
    }
    if (!sawTrailer) {
      throw new TraceFileError('TRACE_TRUNCATED', this.file, offset,
        'expected another frame or the trailer: the file ends without its trailer (the recording was cut short)');
    }
  }
}

/** The length of the one field a batch frame holds, checked against the frame. */
function innerLength(body: Buffer, file: string, at: number): { value: number; next: number } {
  const read = readVarint(body, 1, body.length, 8);
  if (typeof read === 'string') throw new TraceFileError('TRACE_CORRUPT', file, at + 1, 'expected the batch length inside its frame');
  const { value, next } = read;
  if (next + value !== body.length) {
    throw new TraceFileError('TRACE_CORRUPT', file, at, `expected a batch of ${body.length - next} bytes filling its frame, found a length of ${value}`);
  }
  return { value, next };
}

function checkHeader(file: string, frame: pb.TraceFrame): void {
  const h = frame.header;
  if (!h || h.magic !== TRACE_MAGIC) throw new TraceFileError('NOT_A_TRACE', file, 0, `expected the header's magic '${TRACE_MAGIC}'`);
  if ((h.formatVersion ?? 0) > TRACE_FORMAT_VERSION || !h.formatVersion) {
    throw new TraceFileError('TRACE_CORRUPT', file, 0, `format version ${h.formatVersion} is not one this bpftrace-net reads (1 to ${TRACE_FORMAT_VERSION})`);
  }
}

export const FRAME_TAG = TAG;
