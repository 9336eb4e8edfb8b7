// A small zip reader for weight files (PyTorch's torch.save writes a zip): the central directory,
// stored and deflated entries (Node's zlib), ZIP64 sizes and offsets, and a CRC-32 check of every
// entry read. Everything is bounds-checked: a truncated or damaged file is an error naming the file.
import { crc32, inflateRawSync } from 'node:zlib';

export interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  crc: number;
  localOffset: number;
}

export class ZipArchive {
  readonly entries: Map<string, ZipEntry>;

  private constructor(
    private readonly bytes: Buffer,
    private readonly origin: string,
    entries: ZipEntry[],
  ) {
    this.entries = new Map(entries.map((e) => [e.name, e]));
  }

  /** Parses the central directory of `bytes` (the whole file); `origin` names the file in errors. */
  static open(bytes: Buffer, origin: string): ZipArchive {
    return new ZipArchive(bytes, origin, readCentralDirectory(bytes, origin));
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The entry's bytes (a view into the file for stored entries), CRC-checked. */
  read(name: string): Buffer {
    const entry = this.entries.get(name);
    if (!entry) throw new Error(`${this.origin}: the archive has no entry ${name}`);
    const b = this.bytes;
    const fail = (what: string) => new Error(`${this.origin}: zip entry ${name} ${what} (the file is truncated or damaged)`);
    if (entry.localOffset + 30 > b.length || b.readUInt32LE(entry.localOffset) !== 0x04034b50) throw fail('has no local header');
    const start = entry.localOffset + 30 + b.readUInt16LE(entry.localOffset + 26) + b.readUInt16LE(entry.localOffset + 28);
    if (start + entry.compressedSize > b.length) throw fail(`needs ${entry.compressedSize} bytes at offset ${start} but the file ends at ${b.length}`);
    const raw = b.subarray(start, start + entry.compressedSize);
    let data: Buffer;
    if (entry.method === 0) data = raw;
    else if (entry.method === 8) {
      try {
        data = inflateRawSync(raw);
      } catch (err) {
        throw fail(`does not inflate: ${(err as Error).message}`);
      }
    } else throw new Error(`${this.origin}: zip entry ${name} uses compression method ${entry.method}; only stored and deflated entries are read`);
    if (data.length !== entry.size) throw fail(`holds ${data.length} bytes, the directory says ${entry.size}`);
    if (crc32(data) >>> 0 !== entry.crc) throw fail('fails its CRC-32 check');
    return data;
  }
}

const EOCD = 0x06054b50;
const ZIP64_EOCD = 0x06064b50;
const ZIP64_LOCATOR = 0x07064b50;
const CENTRAL = 0x02014b50;

function readCentralDirectory(b: Buffer, origin: string): ZipEntry[] {
  const notZip = (why: string) => new Error(`${origin}: not a readable zip archive: ${why}`);
  if (b.length < 22) throw notZip(`only ${b.length} bytes`);
  if (b.readUInt32LE(0) !== 0x04034b50) throw notZip('it does not start with a zip entry');
  // The end-of-central-directory record sits in the last 22 + 65535 bytes.
  let eocd = -1;
  for (let i = b.length - 22; i >= Math.max(0, b.length - 22 - 0xffff); i--) {
    if (b.readUInt32LE(i) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw notZip('no end-of-central-directory record (the file is truncated)');
  let count = b.readUInt16LE(eocd + 10);
  let size = b.readUInt32LE(eocd + 12);
  let offset = b.readUInt32LE(eocd + 16);
  if (eocd >= 20 && b.readUInt32LE(eocd - 20) === ZIP64_LOCATOR) {
    const z = Number(b.readBigUInt64LE(eocd - 12));
    if (z + 56 > b.length || b.readUInt32LE(z) !== ZIP64_EOCD) throw notZip('broken ZIP64 end-of-central-directory record');
    count = Number(b.readBigUInt64LE(z + 32));
    size = Number(b.readBigUInt64LE(z + 40));
    offset = Number(b.readBigUInt64LE(z + 48));
  }
  if (offset + size > b.length) throw notZip(`the central directory (${size} bytes at ${offset}) lies beyond the end of the file (${b.length} bytes): truncated`);
  const entries: ZipEntry[] = [];
  let p = offset;
  for (let i = 0; i < count; i++) {
    if (p + 46 > offset + size || b.readUInt32LE(p) !== CENTRAL) throw notZip(`central directory entry ${i} is damaged`);
    const method = b.readUInt16LE(p + 10);
    const crc = b.readUInt32LE(p + 16);
    let compressedSize = b.readUInt32LE(p + 20);
    let uncompressed = b.readUInt32LE(p + 24);
    const nameLength = b.readUInt16LE(p + 28);
    const extraLength = b.readUInt16LE(p + 30);
    const commentLength = b.readUInt16LE(p + 32);
    let localOffset = b.readUInt32LE(p + 42);
    const name = b.toString('utf8', p + 46, p + 46 + nameLength);
    // ZIP64 extended information: the 64-bit values of the fields set to 0xFFFFFFFF, in this order.
    let e = p + 46 + nameLength;
    const extraEnd = e + extraLength;
    while (e + 4 <= extraEnd) {
      const id = b.readUInt16LE(e);
      const len = b.readUInt16LE(e + 2);
      if (id === 0x0001) {
        let q = e + 4;
        const next = () => {
          const v = Number(b.readBigUInt64LE(q));
          q += 8;
          return v;
        };
        if (uncompressed === 0xffffffff) uncompressed = next();
        if (compressedSize === 0xffffffff) compressedSize = next();
        if (localOffset === 0xffffffff) localOffset = next();
      }
      e += 4 + len;
    }
    entries.push({ name, method, compressedSize, size: uncompressed, crc, localOffset });
    p = extraEnd + commentLength;
  }
  return entries;
}
