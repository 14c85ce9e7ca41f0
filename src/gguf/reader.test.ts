import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { storiesModelMissing, storiesModelPath } from "../../test/helpers/paths.js";
import { ModelFileError } from "../core/errors.js";
import { parseGguf, readGgufFile } from "./reader.js";
import { summarizeModel } from "./summary.js";
import { synthesizeModel } from "./synth.js";
import { GgufValueType } from "./types.js";
import { encodeGgufToBuffer } from "./writer.js";

/** Little-endian byte builder for hand-made (often hostile) headers. */
class Bytes {
  private parts: Buffer[] = [];
  u32(v: number) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.parts.push(b);
    return this;
  }
  u64(v: bigint | number) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.parts.push(b);
    return this;
  }
  raw(b: Buffer | string) {
    this.parts.push(typeof b === "string" ? Buffer.from(b) : b);
    return this;
  }
  str(s: string) {
    return this.u64(Buffer.byteLength(s)).raw(s);
  }
  header(tensors: number, kvs: number, version = 3) {
    return this.raw("GGUF").u32(version).u64(tensors).u64(kvs);
  }
  tensor(name: string, dims: number[], type: number, offset: number) {
    this.str(name).u32(dims.length);
    for (const d of dims) this.u64(d);
    return this.u32(type).u64(offset);
  }
  pad(alignment = 32) {
    const length = this.build().length;
    return this.raw(Buffer.alloc((alignment - (length % alignment)) % alignment));
  }
  build() {
    return Buffer.concat(this.parts);
  }
}

function expectModelError(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(
    () => parseGguf(bytes),
    (error: unknown) => {
      assert.ok(error instanceof ModelFileError, `expected ModelFileError, got ${String(error)}`);
      assert.match(error.message, pattern);
      assert.ok(!error.message.includes("\n"), "error is one line");
      return true;
    },
  );
}

describe("GGUF reader", () => {
  test("reads the real stories260K model", { skip: storiesModelMissing }, () => {
    const file = readGgufFile(storiesModelPath);
    assert.equal(file.version, 3);
    assert.equal(file.tensors.length, 48);
    const summary = summarizeModel([file]);
    assert.equal(summary.architecture, "llama");
    assert.equal(summary.contextLength, 2048);
    assert.equal(summary.embeddingLength, 64);
    assert.equal(summary.blockCount, 5);
    assert.equal(summary.headCount, 8);
    assert.equal(summary.headCountKv, 4);
    assert.equal(summary.vocabularySize, 512);
    assert.equal(summary.hasChatTemplate, false);
    assert.equal(summary.fileType, "F32");
    assert.deepEqual(summary.specialTokens.bos, { id: 1, text: "<s>" });
    assert.equal(summary.specialTokens.padding, undefined, "-1 (0xFFFFFFFF) means no padding token");
    assert.equal(summary.synthetic, false);
  });

  test("writer and reader round-trip byte for byte", () => {
    const bytes = encodeGgufToBuffer(synthesizeModel({ preset: "tiny", quant: "q8_0", seed: 3 }));
    const file = parseGguf(bytes);
    const again = encodeGgufToBuffer({
      version: 3,
      metadata: file.metadata,
      tensors: file.tensors.map((t) => ({
        name: t.name,
        dims: t.dims,
        type: t.type,
        data: bytes.subarray(file.dataOffset + t.offset, file.dataOffset + t.offset + t.size),
      })),
    });
    assert.ok(Buffer.from(bytes).equals(Buffer.from(again)));
    const summary = summarizeModel([file]);
    assert.equal(summary.synthetic, true);
    assert.equal(summary.fileType, "Q8_0");
    assert.equal(summary.hasChatTemplate, true);
  });

  describe("hostile headers each give their own clear error", () => {
    test("wrong magic", () =>
      expectModelError(
        Buffer.from("\x7fELF0000000000000000000000"),
        /not a GGUF file: it starts with bytes 7f 45 4c 46/,
      ));
    test("too short", () => expectModelError(Buffer.from("GG"), /not a GGUF file: it has only 2 bytes/));
    test("version 1", () => expectModelError(new Bytes().header(0, 0, 1).build(), /version 1 is not supported/));
    test("unknown version", () => expectModelError(new Bytes().header(0, 0, 9).build(), /version 9 is not supported/));
    test("big-endian file", () => expectModelError(new Bytes().header(0, 0, 0x03000000).build(), /big-endian/));
    test("tensor count 2^40", () =>
      expectModelError(new Bytes().header(2 ** 40, 0).build(), /tensor count is 1,099,511,627,776, more than/));
    test("counts the file cannot hold", () =>
      expectModelError(new Bytes().header(1000, 1000).build(), /claims 1,000 metadata entries and 1,000 tensors/));
    test("string length 2^63", () =>
      expectModelError(
        new Bytes()
          .header(0, 1)
          .u64(2n ** 63n)
          .raw("x".repeat(40))
          .build(),
        /key of metadata #0 claims a length of 9,223,372,036,854,775,808 bytes/,
      ));
    test("string longer than the file", () =>
      expectModelError(
        new Bytes().header(0, 1).u64(1000).raw("abc".repeat(10)).build(),
        /truncated: key of metadata #0 at byte 32 claims 1,000 bytes/,
      ));
    test("array count 2^40", () =>
      expectModelError(
        new Bytes()
          .header(0, 1)
          .str("a")
          .u32(GgufValueType.ARRAY)
          .u32(GgufValueType.UINT8)
          .u64(2 ** 40)
          .raw(Buffer.alloc(64))
          .build(),
        /item count of metadata a is 1,099,511,627,776, more than the limit/,
      ));
    test("array count the file cannot hold", () =>
      expectModelError(
        new Bytes()
          .header(0, 1)
          .str("a")
          .u32(GgufValueType.ARRAY)
          .u32(GgufValueType.STRING)
          .u64(1_000_000)
          .raw(Buffer.alloc(64))
          .build(),
        /metadata a claims 1,000,000 items of STRING but only 64 bytes remain/,
      ));
    test("unknown value type", () =>
      expectModelError(
        new Bytes().header(0, 1).str("k").u32(99).raw(Buffer.alloc(16)).build(),
        /metadata k has unknown value type 99/,
      ));
    test("bad bool", () =>
      expectModelError(
        new Bytes()
          .header(0, 1)
          .str("k")
          .u32(GgufValueType.BOOL)
          .raw(Buffer.from([7]))
          .raw(Buffer.alloc(16))
          .build(),
        /bool with byte value 7/,
      ));
    test("duplicate key", () =>
      expectModelError(
        new Bytes()
          .header(0, 2)
          .str("k")
          .u32(GgufValueType.UINT8)
          .raw(Buffer.from([1]))
          .str("k")
          .u32(GgufValueType.UINT8)
          .raw(Buffer.from([1]))
          .build(),
        /metadata key k appears twice/,
      ));
    test("alignment 0", () =>
      expectModelError(
        new Bytes().header(0, 1).str("general.alignment").u32(GgufValueType.UINT32).u32(0).build(),
        /general.alignment is 0; it must be a power of two/,
      ));
    test("alignment not a power of two", () =>
      expectModelError(
        new Bytes().header(0, 1).str("general.alignment").u32(GgufValueType.UINT32).u32(48).build(),
        /general.alignment is 48/,
      ));
    test("alignment of the wrong type", () =>
      expectModelError(
        new Bytes().header(0, 1).str("general.alignment").u32(GgufValueType.STRING).str("32").build(),
        /general.alignment must be a UINT32/,
      ));
    test("too many dimensions", () =>
      expectModelError(
        new Bytes().header(1, 0).tensor("t", [1, 1, 1, 1, 1], 0, 0).pad().raw(Buffer.alloc(32)).build(),
        /tensor t has 5 dimensions/,
      ));
    test("zero dimension", () =>
      expectModelError(
        new Bytes().header(1, 0).tensor("t", [4, 0], 0, 0).pad().raw(Buffer.alloc(32)).build(),
        /tensor t has a zero-length dimension 1/,
      ));
    test("element count overflow", () =>
      expectModelError(
        new Bytes()
          .header(1, 0)
          .tensor("t", [2 ** 31, 2 ** 31, 2 ** 31], 0, 0)
          .pad()
          .build(),
        /impossible element count/,
      ));
    test("unknown tensor type", () =>
      expectModelError(
        new Bytes().header(1, 0).tensor("t", [4], 4, 0).pad().raw(Buffer.alloc(32)).build(),
        /unknown or removed ggml type 4/,
      ));
    test("row not a whole number of blocks", () =>
      expectModelError(
        new Bytes().header(1, 0).tensor("t", [33], 8, 0).pad().raw(Buffer.alloc(64)).build(),
        /row length 33, not a multiple of the Q8_0 block size 32/,
      ));
    test("offset past the end", () =>
      expectModelError(
        new Bytes().header(1, 0).tensor("blk.3.ffn_up.weight", [8], 0, 1_000_000).pad().raw(Buffer.alloc(32)).build(),
        /model file is truncated: tensor blk.3.ffn_up.weight ends at byte 1,000,128 but the file has 128/,
      ));
    test("misaligned offset", () =>
      expectModelError(
        new Bytes().header(1, 0).tensor("t", [4], 0, 4).pad().raw(Buffer.alloc(64)).build(),
        /starts at data offset 4, not a multiple of the alignment 32/,
      ));
    test("overlapping tensors", () =>
      expectModelError(
        new Bytes().header(2, 0).tensor("a", [16], 0, 0).tensor("b", [16], 0, 32).pad().raw(Buffer.alloc(128)).build(),
        /tensors a and b overlap/,
      ));
    test("duplicate tensor name", () =>
      expectModelError(
        new Bytes().header(2, 0).tensor("a", [8], 0, 0).tensor("a", [8], 0, 32).pad().raw(Buffer.alloc(128)).build(),
        /tensor a appears twice/,
      ));
    test("tensor name too long", () =>
      expectModelError(
        new Bytes().header(1, 0).tensor("n".repeat(64), [8], 0, 0).pad().raw(Buffer.alloc(32)).build(),
        /name of tensor #0 claims a length of 64 bytes/,
      ));
    test("key not UTF-8", () =>
      expectModelError(
        new Bytes()
          .header(0, 1)
          .u64(2)
          .raw(Buffer.from([0xc3, 0x28]))
          .u32(0)
          .raw(Buffer.alloc(8))
          .build(),
        /key of metadata #0 is not valid UTF-8/,
      ));
    test("missing file", () =>
      assert.throws(
        () => readGgufFile("/nonexistent/model.gguf"),
        /cannot read model file \/nonexistent\/model.gguf: no such file/,
      ));
  });
});

/** Deterministic PRNG so a failing fuzz case can be reproduced from its seed. */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state;
  };
}

function fuzz(name: string, original: Uint8Array, iterations: number, seed: number, headerEnd: number): void {
  const random = lcg(seed);
  const started = Date.now();
  let rejected = 0;
  for (let i = 0; i < iterations; i++) {
    const mode = random() % 3;
    let bytes: Uint8Array;
    if (mode === 0) {
      bytes = original.subarray(0, random() % original.length);
    } else {
      bytes = Uint8Array.from(original);
      const flips = 1 + (random() % 8);
      for (let f = 0; f < flips; f++) {
        // Mostly hit the header, where a flip changes lengths, counts and types.
        const at = mode === 1 ? random() % headerEnd : random() % bytes.length;
        bytes[at] = random() & 0xff;
      }
    }
    const caseStarted = Date.now();
    try {
      parseGguf(bytes);
    } catch (error) {
      assert.ok(error instanceof ModelFileError, `${name} case ${i} (seed ${seed}): ${String(error)}`);
      assert.ok(!error.message.includes("\n"));
      rejected++;
    }
    assert.ok(Date.now() - caseStarted < 2000, `${name} case ${i} took too long`);
  }
  assert.ok(rejected > 0, "some mutations are rejected");
  assert.ok(Date.now() - started < 60_000);
}

describe("GGUF reader fuzz (bounded)", () => {
  test("random truncations and byte flips of a synthetic model", () => {
    const bytes = encodeGgufToBuffer(synthesizeModel({ preset: "tiny", quant: "q8_0", seed: 1 }));
    fuzz("tiny", bytes, 1500, 12345, parseGguf(bytes).dataOffset);
  });
  test("random truncations and byte flips of stories260K", { skip: storiesModelMissing }, () => {
    const bytes = readFileSync(storiesModelPath);
    fuzz("stories260K", bytes, 800, 777, parseGguf(bytes).dataOffset);
  });
});
