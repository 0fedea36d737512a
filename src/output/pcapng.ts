/** A minimal pcapng writer (draft-ietf-opsawg-pcapng): section header,
 * interface descriptions, enhanced packet blocks with options. Blocks are
 * built in memory and written by the caller. */

export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101;

const BT_SHB = 0x0a0d0d0a;
const BT_IDB = 0x00000001;
const BT_EPB = 0x00000006;

const OPT_COMMENT = 1;
const OPT_CUSTOM_STRING = 2988;
const SHB_HARDWARE = 2;
const SHB_OS = 3;
const SHB_USERAPPL = 4;
const IF_NAME = 2;
const IF_DESCRIPTION = 3;
const IF_TSRESOL = 9;
const EPB_FLAGS = 2;
const EPB_DROPCOUNT = 4;
const EPB_PACKETID = 5;

/** RFC 5612's documentation enterprise number: this project has no PEN of its own. */
export const CUSTOM_OPTION_PEN = 32473;

export const DIRECTION_INBOUND = 1;
export const DIRECTION_OUTBOUND = 2;

type Option = [code: number, value: Buffer];

function pad4(n: number): number {
  return (n + 3) & ~3;
}

function options(opts: Option[]): Buffer {
  if (!opts.length) return Buffer.alloc(0);
  const parts: Buffer[] = [];
  for (const [code, value] of opts) {
    const head = Buffer.alloc(4);
    head.writeUInt16LE(code, 0);
    head.writeUInt16LE(value.length, 2);
    parts.push(head, value, Buffer.alloc(pad4(value.length) - value.length));
  }
  parts.push(Buffer.alloc(4)); // opt_endofopt
  return Buffer.concat(parts);
}

function block(type: number, body: Buffer): Buffer {
  const len = 12 + body.length;
  const out = Buffer.alloc(len);
  out.writeUInt32LE(type, 0);
  out.writeUInt32LE(len, 4);
  body.copy(out, 8);
  out.writeUInt32LE(len, len - 4);
  return out;
}

const text = (s: string) => Buffer.from(s, 'utf8');
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};
const u64 = (n: number | bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(n)));
  return b;
};

export function sectionHeader(app: string, os: string, hardware: string): Buffer {
  const fixed = Buffer.alloc(16);
  fixed.writeUInt32LE(0x1a2b3c4d, 0);
  fixed.writeUInt16LE(1, 4);
  fixed.writeUInt16LE(0, 6);
  fixed.writeBigInt64LE(-1n, 8); // section length unknown
  return block(BT_SHB, Buffer.concat([fixed, options([[SHB_HARDWARE, text(hardware)], [SHB_OS, text(os)], [SHB_USERAPPL, text(app)]])]));
}

export function interfaceDescription(linktype: number, snaplen: number, name: string, description: string): Buffer {
  const fixed = Buffer.alloc(8);
  fixed.writeUInt16LE(linktype, 0);
  fixed.writeUInt32LE(snaplen, 4);
  return block(BT_IDB, Buffer.concat([fixed, options([
    [IF_NAME, text(name)], [IF_DESCRIPTION, text(description)], [IF_TSRESOL, Buffer.from([9])], // ns timestamps
  ])]));
}

export interface PacketRecord {
  interfaceId: number;
  /** Unix epoch ns. */
  timestampNs: bigint;
  data: Uint8Array;
  originalLength: number;
  comment?: string;
  /** Further comments (pcapng allows several): the fields line wireshark/bpftrace_net.lua reads. */
  moreComments?: string[];
  direction?: number;
  dropCount?: number;
  packetId?: number;
  /** A machine-readable annotation under CUSTOM_OPTION_PEN. */
  custom?: string;
}

export function enhancedPacket(p: PacketRecord): Buffer {
  const fixed = Buffer.alloc(20);
  fixed.writeUInt32LE(p.interfaceId, 0);
  // Whatever a damaged trace holds, the block stays well-formed.
  const ts = BigInt.asUintN(64, p.timestampNs);
  fixed.writeUInt32LE(Number(ts >> 32n), 4);
  fixed.writeUInt32LE(Number(ts & 0xffffffffn), 8);
  fixed.writeUInt32LE(p.data.length, 12);
  fixed.writeUInt32LE(Math.min(Math.max(p.originalLength, p.data.length), 0xffffffff), 16);
  const data = Buffer.alloc(pad4(p.data.length));
  Buffer.from(p.data).copy(data);
  const opts: Option[] = [];
  if (p.comment) opts.push([OPT_COMMENT, text(p.comment)]);
  for (const c of p.moreComments ?? []) opts.push([OPT_COMMENT, text(c)]);
  if (p.direction) opts.push([EPB_FLAGS, u32(p.direction)]);
  if (p.dropCount !== undefined) opts.push([EPB_DROPCOUNT, u64(p.dropCount)]);
  if (p.packetId !== undefined) opts.push([EPB_PACKETID, u64(p.packetId)]);
  if (p.custom) opts.push([OPT_CUSTOM_STRING, Buffer.concat([u32(CUSTOM_OPTION_PEN), text(p.custom)])]);
  return block(BT_EPB, Buffer.concat([fixed, data, options(opts)]));
}
