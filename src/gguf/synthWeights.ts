import { TensorType } from "./tensorTypes.js";
import { type GgufMetadataValue, GgufValueType } from "./types.js";

/** The synthetic models' building blocks: seeded random weights in each tensor encoding, and metadata values. */

/** mulberry32: tiny, fast and deterministic across platforms (only 32-bit integer math). */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

export function mixSeed(seed: number, index: number): number {
  let h = (seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE 754 float32 → float16 bits, round to nearest even. */
export function floatToHalf(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  let e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - e;
    let half = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
  if ((half & 0x7c00) === 0x7c00) e = 0x1f;
  return sign | half;
}

/** Random weights in [-scale, scale] for one tensor, encoded in `type`. */
export function randomTensorData(type: number, elements: number, scale: number, seed: number): Uint8Array {
  const next = prng(seed);
  const toUnit = (r: number) => (r / 0xffffffff) * 2 - 1;
  if (type === TensorType.F32) {
    const values = new Float32Array(elements);
    for (let i = 0; i < elements; i++) values[i] = toUnit(next()) * scale;
    return new Uint8Array(values.buffer);
  }
  if (type === TensorType.F16) {
    const values = new Uint16Array(elements);
    for (let i = 0; i < elements; i++) values[i] = floatToHalf(toUnit(next()) * scale);
    return new Uint8Array(values.buffer);
  }
  // Q8_0: per block of 32, an f16 scale then 32 int8 quants. Random quants in [-127, 127] with d = scale / 127
  // are exactly what quantising uniform noise of that range gives, without the float detour.
  const blocks = elements / 32;
  const out = new Uint8Array(blocks * 34);
  const d = floatToHalf(scale / 127);
  for (let b = 0; b < blocks; b++) {
    const at = b * 34;
    out[at] = d & 0xff;
    out[at + 1] = d >>> 8;
    for (let i = 0; i < 32; i += 4) {
      const r = next();
      for (let k = 0; k < 4; k++) out[at + 2 + i + k] = ((((r >>> (k * 8)) & 0xff) % 255) - 127) & 0xff;
    }
  }
  return out;
}

export function str(value: string): GgufMetadataValue {
  return { type: GgufValueType.STRING, value };
}
export function u32(value: number): GgufMetadataValue {
  return { type: GgufValueType.UINT32, value };
}
export function f32(value: number): GgufMetadataValue {
  return { type: GgufValueType.FLOAT32, value };
}
