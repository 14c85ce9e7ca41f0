// Small valid GGUF files for store tests: distinct bytes per seed, and split models as gguf-split lays them out.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  type GgufMetadataValue,
  GgufValueType,
  readGgufFile,
  TensorType,
  writeGgufFile,
} from "../../src/gguf/index.js";

function str(value: string): GgufMetadataValue {
  return { type: GgufValueType.STRING, value };
}

function tensorBytes(elements: number, seed: number): Uint8Array {
  const values = new Float32Array(elements);
  for (let i = 0; i < elements; i++) values[i] = Math.sin(seed * 1000 + i);
  return new Uint8Array(values.buffer);
}

function baseMetadata(seed: number): Map<string, GgufMetadataValue> {
  return new Map<string, GgufMetadataValue>([
    ["general.architecture", str("llama")],
    ["general.name", str(`test model ${seed}`)],
    ["llama.context_length", { type: GgufValueType.UINT32, value: 128 }],
    ["tokenizer.chat_template", str("{{ messages }}")],
  ]);
}

/** Writes a small valid GGUF whose bytes depend on `seed`. Returns its path. */
export function writeSmallGguf(path: string, seed = 0, extra: [string, GgufMetadataValue][] = []): string {
  const metadata = baseMetadata(seed);
  for (const [key, value] of extra) metadata.set(key, value);
  writeGgufFile(path, {
    metadata,
    tensors: [
      { name: "token_embd.weight", dims: [8, 16], type: TensorType.F32, data: tensorBytes(128, seed) },
      { name: "output_norm.weight", dims: [8], type: TensorType.F32, data: tensorBytes(8, seed + 1) },
    ],
  });
  return path;
}

/** The split metadata llama.cpp's gguf-split writes into every shard (split.no counts from 0). */
export function splitMetadata(index: number, count: number, tensors: number): [string, GgufMetadataValue][] {
  return [
    ["split.no", { type: GgufValueType.UINT16, value: index }],
    ["split.count", { type: GgufValueType.UINT16, value: count }],
    ["split.tensors.count", { type: GgufValueType.INT32, value: tensors }],
  ];
}

/** Writes PREFIX-0000k-of-0000N.gguf shards, one tensor each. Returns their paths in order. */
export function writeSplitGguf(directory: string, prefix: string, count: number, seed = 0): string[] {
  const pad = (n: number) => String(n).padStart(5, "0");
  return Array.from({ length: count }, (_, i) => {
    const path = join(directory, `${prefix}-${pad(i + 1)}-of-${pad(count)}.gguf`);
    const metadata = i === 0 ? baseMetadata(seed) : new Map<string, GgufMetadataValue>();
    for (const [key, value] of splitMetadata(i, count, count)) metadata.set(key, value);
    writeGgufFile(path, {
      metadata,
      tensors: [{ name: `blk.${i}.weight`, dims: [8, 4], type: TensorType.F32, data: tensorBytes(32, seed * 100 + i) }],
    });
    return path;
  });
}

/**
 * Splits a real GGUF model into PREFIX-0000k-of-0000N.gguf shards as llama.cpp's gguf-split lays them out: every
 * key-value in the first shard, the split keys in every shard, the tensors spread in order. Returns the paths.
 */
export function splitRealGguf(source: string, directory: string, prefix: string, count: number): string[] {
  const file = readGgufFile(source);
  const bytes = readFileSync(source);
  const pad = (n: number) => String(n).padStart(5, "0");
  const perShard = Math.ceil(file.tensors.length / count);
  return Array.from({ length: count }, (_, i) => {
    const path = join(directory, `${prefix}-${pad(i + 1)}-of-${pad(count)}.gguf`);
    const metadata = i === 0 ? new Map(file.metadata) : new Map<string, GgufMetadataValue>();
    for (const [key, value] of splitMetadata(i, count, file.tensors.length)) metadata.set(key, value);
    const tensors = file.tensors.slice(i * perShard, (i + 1) * perShard).map((tensor) => ({
      name: tensor.name,
      dims: tensor.dims,
      type: tensor.type,
      data: new Uint8Array(
        bytes.subarray(file.dataOffset + tensor.offset, file.dataOffset + tensor.offset + tensor.size),
      ),
    }));
    writeGgufFile(path, { metadata, tensors });
    return path;
  });
}
