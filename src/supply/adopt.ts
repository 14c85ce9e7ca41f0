import type { Dirent } from "node:fs";
import { readdir, readFile, realpath, stat } from "node:fs/promises";
import { basename, join, relative, resolve } from "node:path";
import { quantizationOf } from "../hub/index.js";

/** A GGUF model another tool already keeps on this machine. */
export interface FoundModel {
  tool: "ollama" | "lm-studio" | "huggingface";
  /** The file to import (the first shard of a split model). */
  path: string;
  /** A store name for it, derived from where the tool keeps it. */
  suggestedName: string;
  /** Bytes of the file (the first shard's, for split models). */
  size: number;
}

const shardPattern = /-(\d{5})-of-(\d{5})\.gguf$/i;

/** One store-name part from arbitrary text: letters, digits, ".", "_", "-", starting with a letter or digit. */
function namePart(text: string, fallback: string): string {
  const cleaned = text
    .replace(/[^A-Za-z0-9._-]/g, "_")
    .replace(/^[^A-Za-z0-9]+/, "")
    .slice(0, 80);
  return cleaned === "" ? fallback : cleaned;
}

async function entries(directory: string): Promise<Dirent[]> {
  return readdir(directory, { withFileTypes: true }).catch(() => []);
}

/** GGUF files under a directory, at most `depth` levels down; first shards only, projectors left out. */
async function ggufFiles(directory: string, depth: number): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await entries(directory)) {
    const path = join(directory, entry.name);
    const isFile = entry.isFile() || (entry.isSymbolicLink() && (await stat(path).catch(() => null))?.isFile());
    if (entry.isDirectory() && depth > 0) found.push(...(await ggufFiles(path, depth - 1)));
    else if (isFile && entry.name.toLowerCase().endsWith(".gguf")) {
      const lower = entry.name.toLowerCase();
      if (lower.startsWith("mmproj") || lower.includes("-mmproj")) continue;
      const shard = shardPattern.exec(entry.name);
      if (shard && Number(shard[1]) !== 1) continue;
      found.push(path);
    }
  }
  return found.sort();
}

const sizeOf = async (path: string) => (await stat(path).catch(() => null))?.size ?? 0;

/** Ollama: manifests/<registry>/<namespace>/<model>/<tag> name a model layer in blobs/sha256-<hex>. */
async function findOllama(root: string): Promise<FoundModel[]> {
  const found: FoundModel[] = [];
  const manifests = join(root, "manifests");
  for (const registry of await entries(manifests)) {
    for (const namespace of await entries(join(manifests, registry.name))) {
      for (const model of await entries(join(manifests, registry.name, namespace.name))) {
        for (const tag of await entries(join(manifests, registry.name, namespace.name, model.name))) {
          const file = join(manifests, registry.name, namespace.name, model.name, tag.name);
          let layers: { mediaType?: unknown; digest?: unknown }[] = [];
          try {
            const manifest = JSON.parse(await readFile(file, "utf8")) as { layers?: typeof layers };
            layers = Array.isArray(manifest.layers) ? manifest.layers : [];
          } catch {
            continue;
          }
          const layer = layers.find((entry) => entry.mediaType === "application/vnd.ollama.image.model");
          const digest = typeof layer?.digest === "string" ? /^sha256[:-]([0-9a-f]{64})$/.exec(layer.digest) : null;
          if (!digest) continue;
          const blob = join(root, "blobs", `sha256-${digest[1]}`);
          const size = await sizeOf(blob);
          if (size === 0) continue;
          const prefix = namespace.name === "library" ? "" : `${namePart(namespace.name, "ollama")}/`;
          found.push({
            tool: "ollama",
            path: blob,
            suggestedName: `${prefix}${namePart(model.name, "model")}:${namePart(tag.name, "latest")}`,
            size,
          });
        }
      }
    }
  }
  return found;
}

/** LM Studio: models/<publisher>/<repository>/<file>.gguf. */
async function findLmStudio(root: string): Promise<FoundModel[]> {
  const found: FoundModel[] = [];
  for (const path of await ggufFiles(root, 3)) {
    const parts = relative(root, path).split("/");
    const repository = parts.length >= 2 ? parts[parts.length - 2]! : basename(path, ".gguf");
    const tag = quantizationOf(path) ?? basename(path).replace(/\.gguf$/i, "");
    found.push({
      tool: "lm-studio",
      path,
      suggestedName: `${namePart(repository, "model")}:${namePart(tag, "latest")}`,
      size: await sizeOf(path),
    });
  }
  return found;
}

/** The Hugging Face cache: hub/models--OWNER--REPO/snapshots/<commit>/<path>.gguf. */
async function findHuggingFace(root: string): Promise<FoundModel[]> {
  const found: FoundModel[] = [];
  for (const repository of await entries(root)) {
    const match = /^models--([^-].*?)--(.+)$/.exec(repository.name);
    if (!match || !repository.isDirectory()) continue;
    const snapshots = join(root, repository.name, "snapshots");
    for (const snapshot of await entries(snapshots)) {
      for (const path of await ggufFiles(join(snapshots, snapshot.name), 3)) {
        const tag = quantizationOf(path) ?? basename(path).replace(/\.gguf$/i, "");
        found.push({
          tool: "huggingface",
          path,
          suggestedName: `hf.co/${namePart(match[1]!, "owner")}/${namePart(match[2]!, "model")}:${namePart(tag, "latest")}`,
          size: await sizeOf(path),
        });
      }
    }
  }
  return found;
}

/** Where to look: a home directory, the environment (OLLAMA_MODELS, HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME), and the
 * root under which system-wide locations are found ("/" but for tests and mounted disks). */
export interface SearchPlaces {
  home: string;
  /** The variables above (the CLI reads them through src/config); none when left out. */
  env?: Record<string, string | undefined>;
  systemRoot?: string;
}

export interface ModelLocation {
  tool: FoundModel["tool"];
  path: string;
  /** Why this place is searched, for the "nothing found" message: a variable, or the tool's default. */
  why: string;
}

const setting = (env: Record<string, string | undefined>, name: string) =>
  env[name]?.trim() ? env[name]!.trim() : undefined;

/**
 * Where each tool keeps models. Ollama: OLLAMA_MODELS when set, the per-user ~/.ollama/models, and the Linux service's
 * /usr/share/ollama/.ollama/models (the install script runs Ollama as the `ollama` user with that home). Hugging Face:
 * the cache huggingface_hub itself would use (HF_HUB_CACHE, else HF_HOME/hub, else XDG_CACHE_HOME/huggingface/hub,
 * else ~/.cache/huggingface/hub) and the default one beside it. Every place is listed once.
 */
export function modelLocations(places: SearchPlaces | string): ModelLocation[] {
  const { home, env = {}, systemRoot = "/" } = typeof places === "string" ? { home: places } : places;
  const expand = (path: string) => resolve(path.replace(/^~(?=$|\/)/, home));
  const ollamaModels = setting(env, "OLLAMA_MODELS");
  const hfHome = setting(env, "HF_HOME");
  const xdgCache = setting(env, "XDG_CACHE_HOME");
  const hubCache = setting(env, "HF_HUB_CACHE") ?? setting(env, "HUGGINGFACE_HUB_CACHE");
  const locations: ModelLocation[] = [
    ...(ollamaModels ? [{ tool: "ollama" as const, path: expand(ollamaModels), why: "OLLAMA_MODELS" }] : []),
    { tool: "ollama", path: join(home, ".ollama", "models"), why: "Ollama" },
    { tool: "ollama", path: join(systemRoot, "usr", "share", "ollama", ".ollama", "models"), why: "Ollama's service" },
    { tool: "lm-studio", path: join(home, ".lmstudio", "models"), why: "LM Studio" },
    { tool: "lm-studio", path: join(home, ".cache", "lm-studio", "models"), why: "LM Studio" },
    hubCache
      ? { tool: "huggingface", path: expand(hubCache), why: "HF_HUB_CACHE" }
      : hfHome
        ? { tool: "huggingface", path: join(expand(hfHome), "hub"), why: "HF_HOME" }
        : xdgCache
          ? { tool: "huggingface", path: join(expand(xdgCache), "huggingface", "hub"), why: "XDG_CACHE_HOME" }
          : { tool: "huggingface", path: join(home, ".cache", "huggingface", "hub"), why: "Hugging Face" },
    { tool: "huggingface", path: join(home, ".cache", "huggingface", "hub"), why: "Hugging Face" },
  ];
  const seen = new Set<string>();
  return locations.filter((location) => {
    const key = resolve(location.path);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * Finds GGUF models kept by Ollama, LM Studio and the Hugging Face cache in `modelLocations`. Nothing is read but
 * names and manifests. A file reachable from two places (OLLAMA_MODELS pointing at a link to ~/.ollama) is listed once.
 */
export async function findAdoptableModels(places: SearchPlaces | string): Promise<FoundModel[]> {
  const found: FoundModel[] = [];
  for (const location of modelLocations(places)) {
    if (location.tool === "ollama") found.push(...(await findOllama(location.path)));
    else if (location.tool === "lm-studio") found.push(...(await findLmStudio(location.path)));
    else found.push(...(await findHuggingFace(location.path)));
  }
  const seen = new Set<string>();
  const unique: FoundModel[] = [];
  for (const model of found) {
    const key = `${await realpath(model.path).catch(() => model.path)}\n${model.suggestedName}`;
    if (seen.has(key)) continue;
    seen.add(key);
    unique.push(model);
  }
  return unique;
}
