import { ModelFileError } from "../core/errors.js";
import { BufferSource, type ByteSource, FileSource } from "./source.js";
import { tensorTypes } from "./tensorTypes.js";
import { type GgufFile, type GgufMetadataValue, type GgufScalar, type GgufTensorInfo, GgufValueType } from "./types.js";

/** Limits that keep a hostile header from causing huge allocations. Real models are far below each. */
export const ggufLimits = {
  maxKeyBytes: 1024,
  maxStringBytes: 64 * 1024 * 1024,
  maxArrayItems: 1 << 24,
  maxArrayDepth: 3,
  maxMetadataCount: 1 << 20,
  maxTensorCount: 1 << 20,
  maxTensorNameBytes: 63,
  maxDims: 4,
  maxAlignment: 1 << 20,
} as const;

const GGUF_MAGIC = 0x46554747; // "GGUF" read as little-endian u32
const DEFAULT_ALIGNMENT = 32;
const WINDOW = 1 << 20;

const scalarSizes: Partial<Record<GgufValueType, number>> = {
  [GgufValueType.UINT8]: 1,
  [GgufValueType.INT8]: 1,
  [GgufValueType.UINT16]: 2,
  [GgufValueType.INT16]: 2,
  [GgufValueType.UINT32]: 4,
  [GgufValueType.INT32]: 4,
  [GgufValueType.FLOAT32]: 4,
  [GgufValueType.BOOL]: 1,
  [GgufValueType.UINT64]: 8,
  [GgufValueType.INT64]: 8,
  [GgufValueType.FLOAT64]: 8,
};

export function formatBytes(n: number): string {
  return n.toLocaleString("en-US");
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const utf8Lenient = new TextDecoder("utf-8");

/** A forward cursor over a ByteSource that reads through a window, bounds-checking every read. */
class Cursor {
  position = 0;
  private window: Uint8Array = new Uint8Array(0);
  private view = new DataView(this.window.buffer);
  private windowStart = 0;

  constructor(
    private readonly source: ByteSource,
    private readonly fileLabel: string,
  ) {}

  get size(): number {
    return this.source.size;
  }

  remaining(): number {
    return this.source.size - this.position;
  }

  fail(message: string): never {
    throw new ModelFileError(`${this.fileLabel}${message}`);
  }

  /** Makes `n` bytes at the position readable, or fails naming `what` was cut short. */
  private need(n: number, what: string): number {
    if (this.position + n > this.source.size) {
      this.fail(
        `model file is truncated: ${what} at byte ${formatBytes(this.position)} needs ${formatBytes(n)} bytes but the file has ${formatBytes(this.source.size)}`,
      );
    }
    const end = this.windowStart + this.window.length;
    if (this.position < this.windowStart || this.position + n > end) {
      this.windowStart = this.position;
      this.window = this.source.read(this.position, Math.min(Math.max(n, WINDOW), this.source.size - this.position));
      this.view = new DataView(this.window.buffer, this.window.byteOffset, this.window.byteLength);
    }
    const at = this.position - this.windowStart;
    this.position += n;
    return at;
  }

  u8(what: string): number {
    {
      const at = this.need(1, what);
      return this.view.getUint8(at);
    }
  }
  u32(what: string): number {
    {
      const at = this.need(4, what);
      return this.view.getUint32(at, true);
    }
  }
  u64(what: string): bigint {
    {
      const at = this.need(8, what);
      return this.view.getBigUint64(at, true);
    }
  }

  /** A u64 count or size that must fit a JS number and `max`. */
  count(what: string, max: number, maxLabel: string): number {
    const value = this.u64(what);
    if (value > BigInt(max)) {
      this.fail(`${what} is ${value.toLocaleString("en-US")}, more than ${maxLabel}`);
    }
    return Number(value);
  }

  scalar(type: GgufValueType, what: string): GgufScalar {
    switch (type) {
      case GgufValueType.UINT8: {
        const at = this.need(1, what);
        return this.view.getUint8(at);
      }
      case GgufValueType.INT8: {
        const at = this.need(1, what);
        return this.view.getInt8(at);
      }
      case GgufValueType.UINT16: {
        const at = this.need(2, what);
        return this.view.getUint16(at, true);
      }
      case GgufValueType.INT16: {
        const at = this.need(2, what);
        return this.view.getInt16(at, true);
      }
      case GgufValueType.UINT32: {
        const at = this.need(4, what);
        return this.view.getUint32(at, true);
      }
      case GgufValueType.INT32: {
        const at = this.need(4, what);
        return this.view.getInt32(at, true);
      }
      case GgufValueType.FLOAT32: {
        const at = this.need(4, what);
        return this.view.getFloat32(at, true);
      }
      case GgufValueType.FLOAT64: {
        const at = this.need(8, what);
        return this.view.getFloat64(at, true);
      }
      case GgufValueType.BOOL: {
        const at = this.need(1, what);
        const byte = this.view.getUint8(at);
        if (byte > 1) this.fail(`${what} is a bool with byte value ${byte} (must be 0 or 1)`);
        return byte === 1;
      }
      case GgufValueType.UINT64: {
        const at = this.need(8, what);
        const value = this.view.getBigUint64(at, true);
        return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
      }
      case GgufValueType.INT64: {
        const at = this.need(8, what);
        const value = this.view.getBigInt64(at, true);
        return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)
          ? Number(value)
          : value;
      }
      case GgufValueType.STRING:
        return this.string(what, ggufLimits.maxStringBytes, false);
      default:
        return this.fail(`${what} has unknown value type ${type}`);
    }
  }

  string(what: string, maxBytes: number, strict: boolean): string {
    const length = this.u64(`length of ${what}`);
    if (length > BigInt(maxBytes)) {
      this.fail(
        `${what} claims a length of ${length.toLocaleString("en-US")} bytes (the limit is ${formatBytes(maxBytes)})`,
      );
    }
    const n = Number(length);
    if (n > this.remaining()) {
      this.fail(
        `model file is truncated: ${what} at byte ${formatBytes(this.position)} claims ${formatBytes(n)} bytes but only ${formatBytes(this.remaining())} remain`,
      );
    }
    if (n === 0) return "";
    const at = this.need(n, what);
    const bytes = this.window.subarray(at, at + n);
    if (!strict) return utf8Lenient.decode(bytes);
    try {
      return utf8.decode(bytes);
    } catch {
      return this.fail(`${what} is not valid UTF-8`);
    }
  }
}

function valueTypeName(type: number): string {
  return GgufValueType[type] ?? `unknown(${type})`;
}

function readValue(cursor: Cursor, type: number, key: string, depth: number): GgufMetadataValue {
  if (type === GgufValueType.ARRAY) {
    if (depth >= ggufLimits.maxArrayDepth)
      cursor.fail(`metadata ${key} nests arrays deeper than ${ggufLimits.maxArrayDepth}`);
    const itemType = cursor.u32(`item type of metadata ${key}`);
    if (!(itemType in GgufValueType)) cursor.fail(`metadata ${key} is an array of unknown value type ${itemType}`);
    const count = cursor.count(
      `item count of metadata ${key}`,
      ggufLimits.maxArrayItems,
      `the limit of ${formatBytes(ggufLimits.maxArrayItems)} items`,
    );
    // Every item takes at least this many bytes, so a count the file cannot hold is caught before allocating.
    const minItemSize =
      itemType === GgufValueType.STRING
        ? 8
        : itemType === GgufValueType.ARRAY
          ? 12
          : scalarSizes[itemType as GgufValueType]!;
    if (count * minItemSize > cursor.remaining()) {
      cursor.fail(
        `model file is truncated: metadata ${key} claims ${formatBytes(count)} items of ${valueTypeName(itemType)} but only ${formatBytes(cursor.remaining())} bytes remain`,
      );
    }
    if (itemType === GgufValueType.ARRAY) {
      const items: GgufMetadataValue[] = new Array(count);
      for (let i = 0; i < count; i++) items[i] = readValue(cursor, itemType, `${key}[${i}]`, depth + 1);
      return { type: GgufValueType.ARRAY, itemType, value: items };
    }
    const items: GgufScalar[] = new Array(count);
    for (let i = 0; i < count; i++) items[i] = cursor.scalar(itemType, `metadata ${key}[${i}]`);
    return { type: GgufValueType.ARRAY, itemType, value: items };
  }
  if (!(type in GgufValueType)) cursor.fail(`metadata ${key} has unknown value type ${type}`);
  return { type: type as Exclude<GgufValueType, GgufValueType.ARRAY>, value: cursor.scalar(type, `metadata ${key}`) };
}

function readTensorInfo(cursor: Cursor, index: number): GgufTensorInfo {
  const name = cursor.string(`name of tensor #${index}`, ggufLimits.maxTensorNameBytes, true);
  if (name.length === 0) cursor.fail(`tensor #${index} has an empty name`);
  const nDims = cursor.u32(`dimension count of tensor ${name}`);
  if (nDims < 1 || nDims > ggufLimits.maxDims) {
    cursor.fail(`tensor ${name} has ${nDims} dimensions (must be 1 to ${ggufLimits.maxDims})`);
  }
  const dims: number[] = [];
  let elements = 1n;
  for (let d = 0; d < nDims; d++) {
    const dim = cursor.u64(`dimension ${d} of tensor ${name}`);
    if (dim === 0n) cursor.fail(`tensor ${name} has a zero-length dimension ${d}`);
    elements *= dim;
    if (elements > BigInt(Number.MAX_SAFE_INTEGER))
      cursor.fail(`tensor ${name} has an impossible element count (over 2^53)`);
    dims.push(Number(dim));
  }
  const type = cursor.u32(`type of tensor ${name}`);
  const info = tensorTypes.get(type);
  if (!info) cursor.fail(`tensor ${name} has unknown or removed ggml type ${type}`);
  if (dims[0]! % info.blockSize !== 0) {
    cursor.fail(
      `tensor ${name} has row length ${dims[0]}, not a multiple of the ${info.name} block size ${info.blockSize}`,
    );
  }
  const offset = cursor.u64(`data offset of tensor ${name}`);
  if (offset > BigInt(Number.MAX_SAFE_INTEGER)) cursor.fail(`tensor ${name} has an impossible data offset`);
  const size = (Number(elements) / info.blockSize) * info.typeSize;
  return { name, dims, type, offset: Number(offset), size };
}

function parse(source: ByteSource, fileLabel: string): GgufFile {
  const cursor = new Cursor(source, fileLabel);
  if (source.size < 4) cursor.fail(`not a GGUF file: it has only ${source.size} bytes`);
  const magic = cursor.u32("magic");
  if (magic !== GGUF_MAGIC) {
    const head = Array.from(source.read(0, 4), (b) => b.toString(16).padStart(2, "0")).join(" ");
    cursor.fail(`not a GGUF file: it starts with bytes ${head}, expected "GGUF" (47 47 55 46)`);
  }
  const version = cursor.u32("version");
  if (version === 1) cursor.fail("GGUF version 1 is not supported; convert the file with a current llama.cpp");
  if (version !== 2 && version !== 3) {
    if ((version & 0xffff) === 0 && version !== 0) cursor.fail("big-endian GGUF files are not supported");
    cursor.fail(`GGUF version ${version} is not supported (this freehold reads versions 2 and 3)`);
  }
  const tensorCount = cursor.count(
    "tensor count",
    ggufLimits.maxTensorCount,
    `the limit of ${formatBytes(ggufLimits.maxTensorCount)}`,
  );
  const metadataCount = cursor.count(
    "metadata count",
    ggufLimits.maxMetadataCount,
    `the limit of ${formatBytes(ggufLimits.maxMetadataCount)}`,
  );
  // Minimum bytes per entry (empty key + type + 1-byte value; empty name + 1 dim + type + offset) bound the counts by the file size.
  if (metadataCount * 13 + tensorCount * 32 > cursor.remaining()) {
    cursor.fail(
      `model file is truncated: the header claims ${formatBytes(metadataCount)} metadata entries and ${formatBytes(tensorCount)} tensors, more than ${formatBytes(cursor.remaining())} remaining bytes can hold`,
    );
  }

  const metadata = new Map<string, GgufMetadataValue>();
  for (let i = 0; i < metadataCount; i++) {
    const key = cursor.string(`key of metadata #${i}`, ggufLimits.maxKeyBytes, true);
    if (key.length === 0) cursor.fail(`metadata #${i} has an empty key`);
    if (metadata.has(key)) cursor.fail(`metadata key ${key} appears twice`);
    const type = cursor.u32(`value type of metadata ${key}`);
    metadata.set(key, readValue(cursor, type, key, 0));
  }

  let alignment = DEFAULT_ALIGNMENT;
  const alignmentEntry = metadata.get("general.alignment");
  if (alignmentEntry) {
    if (alignmentEntry.type !== GgufValueType.UINT32) {
      cursor.fail(`general.alignment must be a UINT32, not ${valueTypeName(alignmentEntry.type)}`);
    }
    alignment = alignmentEntry.value as number;
    if (alignment === 0 || (alignment & (alignment - 1)) !== 0 || alignment > ggufLimits.maxAlignment) {
      cursor.fail(
        `general.alignment is ${alignment}; it must be a power of two from 1 to ${formatBytes(ggufLimits.maxAlignment)}`,
      );
    }
  }

  const tensors: GgufTensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const tensor = readTensorInfo(cursor, i);
    if (names.has(tensor.name)) cursor.fail(`tensor ${tensor.name} appears twice`);
    names.add(tensor.name);
    tensors.push(tensor);
  }

  const dataOffset = Math.ceil(cursor.position / alignment) * alignment;
  const dataSize = source.size - dataOffset;
  const byOffset = [...tensors].sort((a, b) => a.offset - b.offset);
  let previous: GgufTensorInfo | undefined;
  for (const tensor of byOffset) {
    if (tensor.offset % alignment !== 0) {
      cursor.fail(
        `tensor ${tensor.name} starts at data offset ${formatBytes(tensor.offset)}, not a multiple of the alignment ${alignment}`,
      );
    }
    const end = dataOffset + tensor.offset + tensor.size;
    if (tensor.offset + tensor.size > dataSize) {
      cursor.fail(
        `model file is truncated: tensor ${tensor.name} ends at byte ${formatBytes(end)} but the file has ${formatBytes(source.size)}`,
      );
    }
    if (previous && tensor.offset < previous.offset + previous.size) {
      cursor.fail(`tensors ${previous.name} and ${tensor.name} overlap in the data section`);
    }
    previous = tensor;
  }

  return { version, metadata, tensors, alignment, dataOffset, fileSize: source.size };
}

/** Parses and validates a GGUF file held in memory. Throws ModelFileError with a one-line message. */
export function parseGguf(bytes: Uint8Array): GgufFile {
  return parse(new BufferSource(bytes), "");
}

/**
 * Reads and validates a GGUF file's header, metadata and tensor table (not the weights) before anything native opens it.
 * @example
 * const file = readGgufFile("model.gguf");
 * console.log(file.metadata.get("general.architecture")?.value);
 */
export function readGgufFile(path: string): GgufFile {
  let source: FileSource;
  try {
    source = new FileSource(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a directory" : (error as Error).message;
    throw new ModelFileError(`cannot read model file ${path}: ${reason}`, error);
  }
  try {
    return { path, ...parse(source, `${path}: `) };
  } finally {
    source.close();
  }
}
