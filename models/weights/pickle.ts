// A restricted unpickler: exactly the subset of Python's pickle that `torch.save(state_dict)` writes,
// and nothing that runs code. Globals are looked up in a fixed allow-list (OrderedDict, torch's tensor
// rebuild functions, torch storage types); any other global — `os.system`, `builtins.eval`, … — and any
// opcode outside the subset is refused with an error naming the file, the opcode or global and the
// byte offset. No Python object is ever constructed from the file's instructions beyond plain data.

/** A torch storage reference: ('storage', StorageType, key, location, numel). */
export interface StorageRef {
  kind: 'storage';
  dtype: StorageDtype;
  key: string;
  location: string;
  numel: number;
}

/** torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks, [metadata]). */
export interface TensorRef {
  kind: 'tensor';
  storage: StorageRef;
  offset: number;
  shape: number[];
  stride: number[];
}

export type StorageDtype = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

/** Storage classes torch.save names (legacy typed storages, kept by torch 2.x for compatibility). */
const STORAGE_TYPES: Record<string, StorageDtype> = {
  FloatStorage: 'float32',
  DoubleStorage: 'float64',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
};

/** Python's OrderedDict/dict as a Map with string keys; `attributes` holds what BUILD set (e.g. _metadata). */
export class PyDict extends Map<unknown, unknown> {
  attributes: Record<string, unknown> = {};
}

class Mark {}
const MARK = new Mark();

type Global = { kind: 'global'; module: string; name: string };

const ALLOWED_CALLABLES = new Set(['collections.OrderedDict', 'torch._utils._rebuild_tensor_v2', 'torch._utils._rebuild_parameter']);

function globalAllowed(module: string, name: string): boolean {
  const full = `${module}.${name}`;
  return ALLOWED_CALLABLES.has(full) || (module === 'torch' && name in STORAGE_TYPES);
}

export class PickleError extends Error {}

/**
 * Unpickles `bytes` (torch's data.pkl). `persistentLoad` resolves BINPERSID ids (torch's storage
 * tuples). Returns the top object (a PyDict for a state_dict).
 */
export function unpickle(bytes: Uint8Array, origin: string, persistentLoad: (pid: unknown) => unknown): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  let p = 0;
  const fail = (what: string, at = p) => new PickleError(`${origin}: refused: ${what} at byte ${at} of the pickle`);
  const need = (n: number) => {
    if (p + n > bytes.length) throw fail('the pickle ends early (truncated)');
  };
  const u8 = () => (need(1), bytes[p++]);
  const u16 = () => (need(2), (p += 2), view.getUint16(p - 2, true));
  const u32 = () => (need(4), (p += 4), view.getUint32(p - 4, true));
  const i32 = () => (need(4), (p += 4), view.getInt32(p - 4, true));
  const take = (n: number) => (need(n), (p += n), bytes.subarray(p - n, p));
  const text = (n: number) => Buffer.from(take(n)).toString('utf8');
  const line = () => {
    const end = bytes.indexOf(0x0a, p);
    if (end < 0) throw fail('unterminated line');
    const s = Buffer.from(bytes.subarray(p, end)).toString('utf8');
    p = end + 1;
    return s;
  };
  const pop = () => {
    if (stack.length === 0) throw fail('stack underflow');
    return stack.pop();
  };
  const popMark = (): unknown[] => {
    const at = stack.lastIndexOf(MARK);
    if (at < 0) throw fail('no MARK on the stack');
    const items = stack.slice(at + 1);
    stack.length = at;
    return items;
  };
  const top = () => {
    if (stack.length === 0) throw fail('stack underflow');
    return stack[stack.length - 1];
  };
  const pushGlobal = (module: string, name: string, at: number) => {
    if (!globalAllowed(module, name)) {
      throw fail(`global ${module}.${name} is not allowed (a PyTorch state_dict only needs OrderedDict, torch tensor rebuilds and storage types; this file would run other code)`, at);
    }
    stack.push({ kind: 'global', module, name } satisfies Global);
  };
  const call = (fn: unknown, args: unknown, at: number): unknown => {
    const g = fn as Global;
    if (g?.kind !== 'global' || !Array.isArray(args)) throw fail('REDUCE of something that is not an allowed global', at);
    const full = `${g.module}.${g.name}`;
    if (full === 'collections.OrderedDict') {
      const d = new PyDict();
      if (args.length > 0) {
        if (!Array.isArray(args[0])) throw fail('OrderedDict with non-list arguments', at);
        for (const pair of args[0] as unknown[]) {
          if (!Array.isArray(pair) || pair.length !== 2) throw fail('OrderedDict item is not a pair', at);
          d.set(pair[0], pair[1]);
        }
      }
      return d;
    }
    if (full === 'torch._utils._rebuild_tensor_v2') {
      const [storage, offset, size, stride] = args as [StorageRef, number, unknown, unknown];
      const ints = (v: unknown) => Array.isArray(v) && v.every((n) => Number.isInteger(n) && (n as number) >= 0);
      if ((storage as StorageRef)?.kind !== 'storage' || !Number.isInteger(offset) || !ints(size) || !ints(stride) || (size as number[]).length !== (stride as number[]).length) {
        throw fail('malformed _rebuild_tensor_v2 arguments', at);
      }
      return { kind: 'tensor', storage, offset, shape: size as number[], stride: stride as number[] } satisfies TensorRef;
    }
    if (full === 'torch._utils._rebuild_parameter') {
      const tensor = args[0] as TensorRef;
      if (tensor?.kind !== 'tensor') throw fail('malformed _rebuild_parameter arguments', at);
      return tensor;
    }
    throw fail(`calling ${full} is not allowed`, at);
  };

  for (;;) {
    const at = p;
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) throw fail('unknown pickle protocol', at);
        break;
      case 0x95: // FRAME (protocol 4): an 8-byte length, frames are just a read-ahead hint
        take(8);
        break;
      case 0x2e: // STOP
        if (stack.length !== 1) throw fail(`STOP with ${stack.length} items on the stack`, at);
        return stack[0];
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new PyDict());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x74: // TUPLE
        stack.push(popMark());
        break;
      case 0x85: // TUPLE1
        stack.push([pop()]);
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        stack.push([pop(), b]);
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        stack.push([pop(), b, c]);
        break;
      }
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x64: {
        // DICT
        const items = popMark();
        const d = new PyDict();
        for (let i = 0; i + 1 < items.length; i += 2) d.set(items[i], items[i + 1]);
        stack.push(d);
        break;
      }
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: {
        // LONG1: little-endian two's complement of n bytes
        const n = u8();
        const raw = take(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(raw[i]);
        if (n > 0 && raw[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) throw fail('integer too large', at);
        stack.push(Number(v));
        break;
      }
      case 0x47: // BINFLOAT (big-endian double)
        need(8);
        stack.push(view.getFloat64(p, false));
        p += 8;
        break;
      case 0x58: // BINUNICODE
        stack.push(text(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(text(u8()));
        break;
      case 0x54: // BINSTRING
        stack.push(text(i32()));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(text(u8()));
        break;
      case 0x42: // BINBYTES
        stack.push(take(u32()));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(take(u8()));
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const key = op === 0x68 ? u8() : u32();
        if (!memo.has(key)) throw fail(`memo ${key} was never stored`, at);
        stack.push(memo.get(key));
        break;
      }
      case 0x63: {
        // GLOBAL "module\nname\n"
        const module = line();
        pushGlobal(module, line(), at);
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw fail('STACK_GLOBAL without strings', at);
        pushGlobal(module, name, at);
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        stack.push(call(pop(), args, at));
        break;
      }
      case 0x51: // BINPERSID
        stack.push(persistentLoad(pop()));
        break;
      case 0x61: {
        // APPEND
        const v = pop();
        const list = top();
        if (!Array.isArray(list)) throw fail('APPEND to a non-list', at);
        list.push(v);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        const list = top();
        if (!Array.isArray(list)) throw fail('APPENDS to a non-list', at);
        list.push(...items);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        const d = top();
        if (!(d instanceof PyDict)) throw fail('SETITEM on a non-dict', at);
        d.set(k, v);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        const d = top();
        if (!(d instanceof PyDict)) throw fail('SETITEMS on a non-dict', at);
        for (let i = 0; i + 1 < items.length; i += 2) d.set(items[i], items[i + 1]);
        break;
      }
      case 0x62: {
        // BUILD: only plain attribute dicts on our dicts (OrderedDict's _metadata)
        const state = pop();
        const target = top();
        if (!(target instanceof PyDict) || !(state instanceof PyDict)) throw fail('BUILD on something other than a dict', at);
        for (const [k, v] of state) if (typeof k === 'string') target.attributes[k] = v;
        break;
      }
      default:
        throw fail(`opcode 0x${op.toString(16).padStart(2, '0')} (${JSON.stringify(String.fromCharCode(op))}) is outside the subset torch.save writes for a state_dict`, at);
    }
  }
}

/** torch's persistent id for a storage: ('storage', torch.<Type>Storage, key, location, numel). */
export function storageRef(pid: unknown, origin: string): StorageRef {
  const t = pid as [unknown, Global, unknown, unknown, unknown];
  if (!Array.isArray(t) || t[0] !== 'storage' || t.length !== 5) throw new PickleError(`${origin}: refused: a persistent id that is not a torch storage`);
  const type = t[1];
  const dtype = type?.kind === 'global' && type.module === 'torch' ? STORAGE_TYPES[type.name] : undefined;
  if (!dtype) throw new PickleError(`${origin}: refused: unknown storage type ${type?.module}.${type?.name}`);
  if (typeof t[2] !== 'string' || !/^[0-9A-Za-z_]+$/.test(t[2]) || typeof t[3] !== 'string' || !Number.isInteger(t[4])) {
    throw new PickleError(`${origin}: refused: malformed storage reference`);
  }
  return { kind: 'storage', dtype, key: t[2], location: t[3], numel: t[4] as number };
}
