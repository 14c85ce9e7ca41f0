import { closeSync, fsyncSync, openSync, writeSync } from "node:fs";
import { tensorByteSize, tensorTypes } from "./tensorTypes.js";
import { type GgufMetadataValue, type GgufScalar, GgufValueType } from "./types.js";

export interface GgufTensorToWrite {
  name: string;
  dims: number[];
  type: number;
  /** The tensor's bytes, or a function that makes them when they are written (so big models stream). */
  data: Uint8Array | (() => Uint8Array);
}

export interface GgufToWrite {
  version?: 2 | 3;
  metadata: Map<string, GgufMetadataValue>;
  tensors: GgufTensorToWrite[];
}

const encoder = new TextEncoder();

/** Accumulates the header bytes; the header is small next to the tensors, so one growing buffer is fine. */
class HeaderBuilder {
  private chunks: Uint8Array[] = [];
  length = 0;
  private push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.length += bytes.length;
  }
  private fixed(size: number, write: (view: DataView) => void): void {
    const bytes = new Uint8Array(size);
    write(new DataView(bytes.buffer));
    this.push(bytes);
  }
  u32(v: number): void {
    this.fixed(4, (d) => d.setUint32(0, v, true));
  }
  u64(v: number | bigint): void {
    this.fixed(8, (d) => d.setBigUint64(0, BigInt(v), true));
  }
  string(s: string): void {
    const bytes = encoder.encode(s);
    this.u64(bytes.length);
    this.push(bytes);
  }
  padTo(alignment: number): void {
    const pad = (alignment - (this.length % alignment)) % alignment;
    if (pad > 0) this.push(new Uint8Array(pad));
  }
  scalar(type: GgufValueType, value: GgufScalar): void {
    switch (type) {
      case GgufValueType.UINT8: {
        this.fixed(1, (d) => d.setUint8(0, Number(value)));
        return;
      }
      case GgufValueType.INT8: {
        this.fixed(1, (d) => d.setInt8(0, Number(value)));
        return;
      }
      case GgufValueType.UINT16: {
        this.fixed(2, (d) => d.setUint16(0, Number(value), true));
        return;
      }
      case GgufValueType.INT16: {
        this.fixed(2, (d) => d.setInt16(0, Number(value), true));
        return;
      }
      case GgufValueType.UINT32: {
        this.fixed(4, (d) => d.setUint32(0, Number(value), true));
        return;
      }
      case GgufValueType.INT32: {
        this.fixed(4, (d) => d.setInt32(0, Number(value), true));
        return;
      }
      case GgufValueType.FLOAT32: {
        this.fixed(4, (d) => d.setFloat32(0, Number(value), true));
        return;
      }
      case GgufValueType.FLOAT64: {
        this.fixed(8, (d) => d.setFloat64(0, Number(value), true));
        return;
      }
      case GgufValueType.BOOL: {
        this.fixed(1, (d) => d.setUint8(0, value ? 1 : 0));
        return;
      }
      case GgufValueType.UINT64: {
        this.fixed(8, (d) => d.setBigUint64(0, BigInt(value), true));
        return;
      }
      case GgufValueType.INT64: {
        this.fixed(8, (d) => d.setBigInt64(0, BigInt(value), true));
        return;
      }
      case GgufValueType.STRING: {
        this.string(String(value));
        return;
      }
      case GgufValueType.ARRAY:
        throw new TypeError("an array is not a scalar");
      default: {
        const unknown: never = type;
        throw new TypeError(`unknown GGUF value type ${String(unknown)}`);
      }
    }
  }
  value(entry: GgufMetadataValue): void {
    if (entry.type !== GgufValueType.ARRAY) {
      this.scalar(entry.type, entry.value);
      return;
    }
    this.u32(entry.itemType);
    this.u64(entry.value.length);
    for (const item of entry.value) {
      if (entry.itemType === GgufValueType.ARRAY) this.value(item as GgufMetadataValue);
      else this.scalar(entry.itemType, item as GgufScalar);
    }
  }
  bytes(): Uint8Array {
    return Buffer.concat(this.chunks);
  }
}

/** Where each tensor goes and the header bytes (everything before the data section). */
export function layoutGguf(model: GgufToWrite): {
  header: Uint8Array;
  offsets: number[];
  sizes: number[];
  alignment: number;
} {
  const alignmentEntry = model.metadata.get("general.alignment");
  const alignment = alignmentEntry && alignmentEntry.type === GgufValueType.UINT32 ? Number(alignmentEntry.value) : 32;
  const header = new HeaderBuilder();
  header.u32(0x46554747);
  header.u32(model.version ?? 3);
  header.u64(model.tensors.length);
  header.u64(model.metadata.size);
  for (const [key, value] of model.metadata) {
    header.string(key);
    header.u32(value.type);
    header.value(value);
  }
  const offsets: number[] = [];
  const sizes: number[] = [];
  let offset = 0;
  for (const tensor of model.tensors) {
    const info = tensorTypes.get(tensor.type);
    if (!info) throw new TypeError(`tensor ${tensor.name}: unknown ggml type ${tensor.type}`);
    const elements = tensor.dims.reduce((a, b) => a * b, 1);
    const size = tensorByteSize(info, elements, tensor.dims[0]!);
    header.string(tensor.name);
    header.u32(tensor.dims.length);
    for (const dim of tensor.dims) header.u64(dim);
    header.u32(tensor.type);
    header.u64(offset);
    offsets.push(offset);
    sizes.push(size);
    offset += Math.ceil(size / alignment) * alignment;
  }
  header.padTo(alignment);
  return { header: header.bytes(), offsets, sizes, alignment };
}

/** Yields the whole file as chunks: header, then each tensor with padding. Tensor data is made lazily. */
export function* encodeGguf(model: GgufToWrite): Generator<Uint8Array> {
  const { header, sizes, alignment } = layoutGguf(model);
  yield header;
  for (const [i, tensor] of model.tensors.entries()) {
    const data = typeof tensor.data === "function" ? tensor.data() : tensor.data;
    if (data.length !== sizes[i]) {
      throw new RangeError(`tensor ${tensor.name}: ${data.length} bytes of data given, its shape needs ${sizes[i]}`);
    }
    yield data;
    const pad = (alignment - (data.length % alignment)) % alignment;
    if (pad > 0 && i < model.tensors.length - 1) yield new Uint8Array(pad);
  }
}

/** Encodes a whole GGUF into one buffer (small models and tests). */
export function encodeGgufToBuffer(model: GgufToWrite): Uint8Array {
  return Buffer.concat([...encodeGguf(model)]);
}

/** Writes a GGUF file at `path` (overwriting it) and fsyncs it. Callers that need atomicity write a temp path and rename. */
export function writeGgufFile(path: string, model: GgufToWrite): number {
  const fd = openSync(path, "w");
  let written = 0;
  try {
    for (const chunk of encodeGguf(model)) {
      let done = 0;
      while (done < chunk.length) done += writeSync(fd, chunk, done, chunk.length - done);
      written += chunk.length;
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return written;
}
