/**
 * The model store as the engine and the API surfaces see it (the catalogue adapters), and the packaged demo model.
 */
import { mkdir, stat } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { ModelCatalog, ModelDescription } from "./core/catalog.js";
import { NotFoundError, StoreError } from "./core/errors.js";
import type { ModelResolver, ResolvedModel } from "./engine/engine.js";
import { probeToolFormat } from "./engine/toolFormatProbe.js";
import { profileDescription } from "./modelSupply.js";
import type { Manifest } from "./store/index.js";
import type { ModelStore } from "./store/store.js";

/** The model an empty store gets: the real stories260K shipped in the package (assets/demo), so it answers offline. */
export const DEMO_MODEL = "demo:stories";

/** The packaged demo model file; the same relative place from src/ (tsx) and dist/ (the build). */
export const DEMO_MODEL_FILE = fileURLToPath(new URL("../assets/demo/stories260K.gguf", import.meta.url));

/** Adapts the store to what the engine needs, turning "no such name" into the API's model_not_found. */
export function storeResolver(
  store: ModelStore,
  options: { allow?: (manifest: Manifest) => void } = {},
): ModelResolver {
  // A request resolves its model name on the hot path: remember each answer with its manifest's mtime, and re-read
  // only when the manifest changed (a stat instead of two reads, a schema parse and a stat per blob).
  const cache = new Map<string, { model: ResolvedModel; manifestPath: string; mtimeMs: number }>();
  const toResolved = async (name: string): Promise<ResolvedModel> => {
    const cached = cache.get(name);
    if (cached) {
      const mtimeMs = await stat(cached.manifestPath).then(
        (info) => info.mtimeMs,
        () => -1,
      );
      if (mtimeMs === cached.mtimeMs) return cached.model;
      cache.delete(name);
    }
    try {
      const details = await store.show(name);
      options.allow?.(details.manifest);
      const paths = await store.resolve(name);
      const model: ResolvedModel = {
        name: details.name,
        digest: details.manifest.files[0]?.digest ?? "",
        paths,
        summary: details.manifest.summary,
        addedAt: details.manifest.addedAt,
        ...(details.manifest.profile ? { profile: details.manifest.profile } : {}),
        ...(details.projectorPath ? { projector: details.projectorPath } : {}),
      };
      const mtimeMs = (await stat(details.manifestPath)).mtimeMs;
      if (cache.size > 1000) cache.clear();
      // Files imported by reference are checked (size, mtime) on every resolve: they can change outside the store.
      if (!details.manifest.files.some((file) => file.link) && !details.manifest.projector?.link) {
        cache.set(name, { model, manifestPath: details.manifestPath, mtimeMs });
      }
      return model;
    } catch (error) {
      if (error instanceof NotFoundError || (error instanceof StoreError && error.status === 400)) {
        throw new NotFoundError(
          `The model '${name}' does not exist here. See installed models with \`freehold list\`; add one with \`freehold import FILE --name ${name}\`.`,
          "model_not_found",
        );
      }
      throw error;
    }
  };
  return {
    resolve: toResolved,
    async list() {
      const entries = await store.list();
      const models: ResolvedModel[] = [];
      for (const entry of entries) {
        const details = await store.show(entry.name).catch(() => undefined);
        if (details)
          models.push({
            name: details.name,
            digest: details.manifest.files[0]?.digest ?? "",
            paths: details.blobPaths,
            summary: details.manifest.summary,
            addedAt: details.manifest.addedAt,
          });
      }
      return models;
    },
  };
}

function describeModel(details: Awaited<ReturnType<ModelStore["show"]>>): ModelDescription {
  const summary = details.manifest.summary;
  return {
    name: details.name,
    digest: details.manifest.files[0]?.digest ?? "",
    size: details.manifest.files.reduce((total, file) => total + file.size, 0),
    modifiedAt: new Date(details.manifest.addedAt),
    architecture: summary.architecture,
    parameters: summary.parameters,
    parameterSize: summary.parameterSize,
    quantization: summary.fileType,
    contextLength: summary.contextLength,
    embeddingLength: summary.embeddingLength,
    chatTemplate: summary.chatTemplate,
    license: summary.license,
    synthetic: summary.synthetic,
    ...(details.manifest.projector
      ? { projector: { digest: details.manifest.projector.digest, size: details.manifest.projector.size } }
      : {}),
    ...profileDescription(details.manifest),
    facts: {
      "general.architecture": summary.architecture,
      "general.name": summary.name,
      "general.parameter_count": summary.parameters,
      "general.file_type": summary.fileType,
      [`${summary.architecture}.context_length`]: summary.contextLength,
      [`${summary.architecture}.embedding_length`]: summary.embeddingLength,
      [`${summary.architecture}.block_count`]: summary.blockCount,
      [`${summary.architecture}.feed_forward_length`]: summary.feedForwardLength,
      [`${summary.architecture}.attention.head_count`]: summary.headCount,
      [`${summary.architecture}.attention.head_count_kv`]: summary.headCountKv,
      [`${summary.architecture}.vocab_size`]: summary.vocabularySize,
      "tokenizer.ggml.model": summary.tokenizer,
      "freehold.synthetic": summary.synthetic,
    },
  };
}

/** The store as the API surfaces see it; unknown names become the API's model_not_found. */
export function storeCatalog(store: ModelStore): ModelCatalog {
  const notFound = (name: string, error: unknown): never => {
    if (error instanceof NotFoundError || (error instanceof StoreError && error.status === 400)) {
      throw new NotFoundError(`The model '${name}' does not exist here.`, "model_not_found");
    }
    throw error;
  };
  return {
    async list() {
      const entries = await store.list();
      const described: ModelDescription[] = [];
      for (const entry of entries) {
        const details = await store.show(entry.name).catch(() => undefined);
        if (details) described.push(describeModel(details));
      }
      return described;
    },
    async describe(name) {
      const description = describeModel(await store.show(name).catch((error: unknown) => notFound(name, error)));
      const toolFormat = await probeToolFormat(description.profile?.template ?? description.chatTemplate);
      return { ...description, toolFormat };
    },
    async copy(source, destination) {
      await store.copy(source, destination).catch((error: unknown) => notFound(source, error));
    },
    async remove(name) {
      await store.remove(name).catch((error: unknown) => notFound(name, error));
    },
  };
}

/**
 * With an empty store, installs the packaged stories260K as demo:stories (a real 260K-parameter model trained on
 * children's stories, 1.2 MB, MIT) so the server, or a library user, gets a real answer out of the box with no network.
 * Returns true when it did. (The synthetic presets stay for tests and benchmarks: `freehold synth`.)
 * @example
 * const freehold = await Freehold.open();
 * await ensureDemoModel(freehold.store);
 */
export async function ensureDemoModel(store: ModelStore): Promise<boolean> {
  if ((await store.list()).length > 0) return false;
  await mkdir(store.home, { recursive: true });
  await store.import(DEMO_MODEL_FILE, DEMO_MODEL);
  return true;
}
