import { stat } from "node:fs/promises";
import { ModelFileError, StoreError } from "../core/errors.js";
import { type GgufFile, readGgufFile } from "../gguf/index.js";
import type { IngestedFile, OnBytes } from "./ingest.js";
import type { ManifestFile } from "./manifest.js";
import type { HashProgress } from "./storeTypes.js";

/** Counts hashed bytes against the files' sizes and reports each step. */
export async function progressOver(
  paths: readonly string[],
  report: HashProgress | undefined,
): Promise<OnBytes | undefined> {
  if (!report) return undefined;
  let totalBytes = 0;
  for (const path of paths) totalBytes += (await stat(path).catch(() => null))?.size ?? 0;
  let doneBytes = 0;
  report({ doneBytes, totalBytes });
  return (bytes) => {
    doneBytes += bytes;
    report({ doneBytes, totalBytes: Math.max(totalBytes, doneBytes) });
  };
}

/** Refuses a file that is not a vision projector llama.cpp can use (general.architecture clip, a vision encoder). */
export function checkProjector(file: GgufFile, path: string): void {
  const architecture = file.metadata.get("general.architecture")?.value;
  const vision = file.metadata.get("clip.has_vision_encoder")?.value;
  if (architecture !== "clip" || vision !== true)
    throw new StoreError(
      `${path} is not a vision projector (an mmproj GGUF has general.architecture "clip" and a vision encoder; this one has ${JSON.stringify(architecture ?? null)})`,
      "invalid_projector",
    );
}

/** A model file must exist; one imported by reference must also be as it was when hashed. */
export async function checkFile(model: string, path: string, file: ManifestFile): Promise<void> {
  const info = await stat(path).catch(() => null);
  if (!info?.isFile()) {
    const how = file.link ? "the file it was imported from by reference is gone" : "import it again";
    throw new StoreError(`model "${model}" is missing its file ${path}; ${how}`, "missing_blob", 500);
  }
  if (file.link && (info.size !== file.link.size || info.mtimeMs !== file.link.mtimeMs)) {
    throw new StoreError(
      `model "${model}" refers to ${path}, which changed after it was imported by reference (it may no longer be the model that was hashed); check it with \`freehold verify\`, then import it again with \`freehold import --link\``,
      "linked_file_changed",
      409,
    );
  }
}

/** Validates the stored copy too: the source may have changed between the first check and the copy. */
export function revalidate(file: IngestedFile, source: string): GgufFile {
  try {
    return readGgufFile(file.temporaryPath);
  } catch (error) {
    if (!(error instanceof ModelFileError)) throw error;
    throw new ModelFileError(`${source} changed while it was imported (${error.message}); import it again`, error);
  }
}

/** Why a downloaded projector is not a vision projector llama.cpp can use, or undefined when it is one. */
export function visionProjectorProblem(projector: { path: string; filename: string }): string | undefined {
  try {
    checkProjector(readGgufFile(projector.path), projector.filename);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** A stored file as its manifest lists it. */
export function manifestEntry({ digest, size, filename }: ManifestFile): ManifestFile {
  return { digest, size, filename };
}
