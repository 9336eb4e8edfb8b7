// The weight-file readers on hand-built files: a minimal torch.save zip, pickles that call arbitrary
// globals (refused, never run), damaged zips, safetensors in F32/F16/BF16, and the layout conversions.
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { parsePth } from '../../models/weights/pth';
import { parseSafetensors } from '../../models/weights/safetensors';
import { batchNormWeights, convKernel, denseKernel, depthwiseKernel } from '../../models/weights/layout';
import { halfToFloat } from '../../models/weights/tensors';

/** A stored (uncompressed) zip of `entries`, as torch.save writes it. */
function zip(entries: [string, Uint8Array][]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of entries) {
    const n = Buffer.from(name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt32LE(crc32(data) >>> 0, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(n.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt32LE(crc32(data) >>> 0, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(n.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, n, Buffer.from(data));
    centrals.push(central, n);
    offset += 30 + n.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

const str = (s: string) => {
  const b = Buffer.from(s);
  return Buffer.concat([Buffer.from([0x58]), u32(b.length), b]); // BINUNICODE
};
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const op = (...bytes: number[]) => Buffer.from(bytes);
const global = (module: string, name: string) => Buffer.from(`c${module}\n${name}\n`);
const f32 = (values: number[]) => new Uint8Array(Float32Array.from(values).buffer);

/**
 * The pickle torch.save writes for {name: tensor of shape [2, 3] in storage "0"} (protocol 2):
 * OrderedDict() with one SETITEMS of _rebuild_tensor_v2(persistent storage, 0, (2, 3), (3, 1), False, OrderedDict()).
 */
function stateDictPickle(name: string, shape = [2, 3], stride = [3, 1], storageType = 'FloatStorage', numel = 6): Buffer {
  const tuple = (items: Buffer[]) => Buffer.concat([op(0x28), ...items, op(0x74)]);
  const int = (n: number) => op(0x4b, n);
  return Buffer.concat([
    op(0x80, 0x02),
    global('collections', 'OrderedDict'),
    op(0x29, 0x52), // EMPTY_TUPLE, REDUCE
    op(0x28), // MARK
    str(name),
    global('torch._utils', '_rebuild_tensor_v2'),
    tuple([
      tuple([str('storage'), global('torch', storageType), str('0'), str('cpu'), int(numel)]),
      op(0x51), // BINPERSID
      int(0),
      tuple(shape.map(int)),
      tuple(stride.map(int)),
      op(0x89), // False
      global('collections', 'OrderedDict'),
      op(0x29, 0x52),
    ]),
    op(0x52), // REDUCE
    op(0x75), // SETITEMS
    op(0x2e), // STOP
  ]);
}

describe('PyTorch .pth reader', () => {
  it('reads a state_dict tensor (contiguous and transposed views)', () => {
    const file = zip([
      ['archive/data.pkl', stateDictPickle('w')],
      ['archive/data/0', f32([1, 2, 3, 4, 5, 6])],
    ]);
    const w = parsePth(file, 'w.pth').tensors.get('w')!;
    expect(w.shape).toEqual([2, 3]);
    expect([...w.data]).toEqual([1, 2, 3, 4, 5, 6]);
    // A transposed view: shape [3, 2] with strides (1, 3).
    const t = parsePth(zip([['a/data.pkl', stateDictPickle('t', [3, 2], [1, 3])], ['a/data/0', f32([1, 2, 3, 4, 5, 6])]]), 't.pth').tensors.get('t')!;
    expect([...t.data]).toEqual([1, 4, 2, 5, 3, 6]);
  });

  it('reads half-precision storages', () => {
    const half = new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x3800, 0x0000, 0x7bff, 0x0001]).buffer);
    const w = parsePth(zip([['a/data.pkl', stateDictPickle('h', [6], [1], 'HalfStorage')], ['a/data/0', half]]), 'h.pth').tensors.get('h')!;
    expect([...w.data]).toEqual([1, -2, 0.5, 0, 65504, 2 ** -24]);
  });

  it('refuses a pickle that calls os.system, without running it', () => {
    const evil = Buffer.concat([op(0x80, 0x02), global('os', 'system'), str('touch /tmp/refit-pwned'), op(0x85, 0x52, 0x2e)]);
    expect(() => parsePth(zip([['a/data.pkl', evil]]), 'evil.pth')).toThrow(
      /^evil\.pth: refused: global os\.system is not allowed .* at byte 2 of the pickle$/,
    );
    // Also through protocol 4's STACK_GLOBAL, and builtins.eval.
    const evil4 = Buffer.concat([op(0x80, 0x04), op(0x8c, 8), Buffer.from('builtins'), op(0x8c, 4), Buffer.from('eval'), op(0x93), str('1'), op(0x85, 0x52, 0x2e)]);
    expect(() => parsePth(zip([['a/data.pkl', evil4]]), 'evil4.pth')).toThrow(/evil4\.pth: refused: global builtins\.eval is not allowed/);
  });

  it('refuses opcodes outside the torch.save subset and storages it does not know', () => {
    const inst = Buffer.concat([op(0x80, 0x02), Buffer.from('ios\nsystem\n'), op(0x2e)]); // INST
    expect(() => parsePth(zip([['a/data.pkl', inst]]), 'inst.pth')).toThrow(/inst\.pth: refused: opcode 0x69 \("i"\) is outside the subset/);
    expect(() => parsePth(zip([['a/data.pkl', stateDictPickle('w', [2, 3], [3, 1], 'ComplexStorage')], ['a/data/0', f32([1])]]), 'c.pth')).toThrow(
      /c\.pth: refused: global torch\.ComplexStorage is not allowed/,
    );
  });

  it('names missing storages, short storages and views beyond their storage', () => {
    expect(() => parsePth(zip([['a/data.pkl', stateDictPickle('w')]]), 'm.pth')).toThrow('m.pth: storage 0 is missing from the archive (a/data/0)');
    expect(() => parsePth(zip([['a/data.pkl', stateDictPickle('w')], ['a/data/0', f32([1, 2])]]), 's.pth')).toThrow(/s\.pth: storage a\/data\/0 holds 8 bytes, 6 float32 values need 24/);
    expect(() => parsePth(zip([['a/data.pkl', stateDictPickle('w', [2, 3], [3, 1], 'FloatStorage', 4)], ['a/data/0', f32([1, 2, 3, 4])]]), 'v.pth')).toThrow(
      /v\.pth: w: the tensor reaches element 5 of a storage of 4/,
    );
  });

  it('refuses truncated, damaged and non-zip files', () => {
    const good = zip([['a/data.pkl', stateDictPickle('w')], ['a/data/0', f32([1, 2, 3, 4, 5, 6])]]);
    expect(() => parsePth(good.subarray(0, good.length - 30), 't.pth')).toThrow('t.pth: not a readable zip archive: no end-of-central-directory record (the file is truncated)');
    const flipped = Buffer.from(good);
    flipped[flipped.indexOf(Buffer.from('a/data/0')) + 8] ^= 0xff; // first byte of the storage
    expect(() => parsePth(flipped, 'f.pth')).toThrow('f.pth: zip entry a/data/0 fails its CRC-32 check (the file is truncated or damaged)');
    expect(() => parsePth(Buffer.from('<html>not found</html>'), 'h.pth')).toThrow('h.pth: not a readable zip archive: it does not start with a zip entry');
    expect(() => parsePth(zip([['a/other', f32([1])]]), 'n.pth')).toThrow('n.pth: a zip without <name>/data.pkl, so not a file written by torch.save');
    expect(() => parsePth(Buffer.from([0x80, 0x02, 0x8a, 0x0a]), 'old.pth')).toThrow(/old\.pth: a PyTorch file in the legacy \(pre-1\.6, non-zip\) format/);
  });
});

describe('safetensors reader', () => {
  function safetensors(header: object, data: Uint8Array): Buffer {
    const json = Buffer.from(JSON.stringify(header));
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(json.length));
    return Buffer.concat([length, json, data]);
  }

  it('reads F32, F16 and BF16', () => {
    const bf16 = new Uint8Array(new Uint16Array([0x3f80, 0xc040]).buffer); // 1, -3
    const f16 = new Uint8Array(new Uint16Array([0x3c00, 0x3555]).buffer); // 1, ≈1/3
    const data = Buffer.concat([f32([1.5, -2]), f16, bf16]);
    const file = safetensors(
      {
        __metadata__: { format: 'pt' },
        a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
        b: { dtype: 'F16', shape: [2], data_offsets: [8, 12] },
        c: { dtype: 'BF16', shape: [1, 2], data_offsets: [12, 16] },
      },
      data,
    );
    const t = parseSafetensors(file, 'x.safetensors').tensors;
    expect([...t.get('a')!.data]).toEqual([1.5, -2]);
    expect(t.get('b')!.data[1]).toBeCloseTo(halfToFloat(0x3555), 7);
    expect([...t.get('c')!.data]).toEqual([1, -3]);
    expect(t.get('c')!.shape).toEqual([1, 2]);
  });

  it('refuses bad offsets, overlaps, unknown dtypes and truncation', () => {
    const data = f32([1, 2]);
    expect(() => parseSafetensors(safetensors({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, data), 'o.st')).toThrow(/o\.st: not a valid safetensors file: tensor a \[3\] F32 needs 12 bytes/);
    expect(() => parseSafetensors(safetensors({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [2, 6] } }, data), 'v.st')).toThrow(/tensors a and b overlap/);
    expect(() => parseSafetensors(safetensors({ a: { dtype: 'U8', shape: [1], data_offsets: [0, 1] } }, data), 'd.st')).toThrow(/d\.st: tensor a has dtype "U8"/);
    expect(() => parseSafetensors(safetensors({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, data), 't.st')).toThrow(/t\.st: .*ends at byte 16 of a 8-byte data section \(truncated\?\)/);
  });
});

describe('layout conversion', () => {
  it('OIHW → HWIO, depthwise, Linear → Dense', () => {
    // torch conv weight [out 2, in 1, 1, 2]: w[o][0][0][x] = 10·o + x.
    const conv = convKernel({ shape: [2, 1, 1, 2], data: Float32Array.from([0, 1, 10, 11]), dtype: 'float32' });
    expect(conv.shape).toEqual([1, 2, 1, 2]);
    expect([...conv.data]).toEqual([0, 10, 1, 11]); // [h][w][i][o]
    const dense = denseKernel({ shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]), dtype: 'float32' });
    expect(dense.shape).toEqual([3, 2]);
    expect([...dense.data]).toEqual([1, 4, 2, 5, 3, 6]);
    // depthwise: in 2 channels, multiplier 2, 1×1: out channel c·2 + j.
    const dw = depthwiseKernel({ shape: [4, 1, 1, 1], data: Float32Array.from([0, 1, 10, 11]), dtype: 'float32' }, 2);
    expect(dw.shape).toEqual([1, 1, 2, 2]);
    expect([...dw.data]).toEqual([0, 1, 10, 11]);
  });

  it('folds a conv bias and an epsilon change into the BN statistics exactly', () => {
    const v = (...x: number[]) => ({ shape: [x.length], data: Float32Array.from(x), dtype: 'float32' });
    const bn = batchNormWeights({ weight: v(2), bias: v(0.5), mean: v(1), variance: v(4) }, { sourceEpsilon: 1e-3, ourEpsilon: 1e-5, convBias: v(0.25) });
    // BN(y + 0.25) at ε 1e-3 must equal BN'(y) at ε 1e-5 for any y.
    for (const y of [-3, 0, 1.7]) {
      const theirs = ((y + 0.25 - 1) / Math.sqrt(4 + 1e-3)) * 2 + 0.5;
      const ours = ((y - bn.moving_mean.data[0]) / Math.sqrt(bn.moving_variance.data[0] + 1e-5)) * bn.gamma.data[0] + bn.beta.data[0];
      expect(ours).toBeCloseTo(theirs, 6);
    }
  });
});
