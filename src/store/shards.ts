import { stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { ModelFileError, StoreError } from "../core/errors.js";
import { type GgufFile, metadataNumber } from "../gguf/index.js";

// llama.cpp's gguf-split names shards PREFIX-%05d-of-%05d.gguf, counting from 1.
const shardPattern = /^(.+)-(\d{5})-of-(\d{5})\.gguf$/;

const pad = (n: number) => String(n).padStart(5, "0");

/**
 * The files that make up the model `file` belongs to, in order: `[file]` for a single file, every shard for a split
 * model (whichever shard was named). A missing shard is an error that names it.
 */
export async function findShards(file: string): Promise<string[]> {
  const match = shardPattern.exec(basename(file));
  if (!match) return [file];
  const [, prefix, indexText, countText] = match as unknown as [string, string, string, string];
  const index = Number(indexText);
  const count = Number(countText);
  if (count === 0 || index === 0 || index > count) {
    throw new StoreError(`${file} is named as shard ${index} of ${count}, which cannot be; check the file name`);
  }
  if (count === 1) return [file];
  const paths = Array.from({ length: count }, (_, i) =>
    join(dirname(file), `${prefix}-${pad(i + 1)}-of-${countText}.gguf`),
  );
  for (const [i, path] of paths.entries()) {
    const info = await stat(path).catch(() => null);
    if (!info?.isFile()) {
      throw new StoreError(
        `split model is missing shard ${i + 1} of ${count}: ${path} does not exist; put all shards in one folder`,
        "missing_shard",
      );
    }
  }
  return paths;
}

/** Checks that the shards' own split metadata agrees with their names, so the store never holds half a model. */
export function checkShardMetadata(files: GgufFile[], paths: string[]): void {
  const count = paths.length;
  for (const [i, file] of files.entries()) {
    const path = paths[i]!;
    const splitNo = metadataNumber(file, "split.no");
    const splitCount = metadataNumber(file, "split.count");
    if (count === 1) {
      if (splitCount !== null && splitCount > 1) {
        throw new ModelFileError(
          `${path} is shard ${(splitNo ?? 0) + 1} of ${splitCount} of a split model, but its name does not end in ` +
            `-0000N-of-${pad(splitCount)}.gguf, so its other shards cannot be found; keep the names gguf-split gave them`,
        );
      }
      continue;
    }
    // split.no counts from 0; file names count from 1.
    if (splitCount !== count || splitNo !== i) {
      throw new ModelFileError(
        `${path} is named as shard ${i + 1} of ${count}, but its metadata says ` +
          (splitCount === null ? "it is not a split model" : `shard ${(splitNo ?? -1) + 1} of ${splitCount}`),
      );
    }
  }
}
