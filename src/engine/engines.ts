/**
 * The engines a runner can host a model in, where llama-server comes from, and which engine a model gets.
 * node-llama-cpp needs no set-up; llama-server is the owner's binary (FREEHOLD_LLAMA_SERVER) or one built by
 * `freehold engine build` from the llama.cpp source node-llama-cpp ships, cached under FREEHOLD_HOME/engines.
 */
import { spawn, spawnSync } from "node:child_process";
import { accessSync, constants, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { FreeholdError } from "../core/errors.js";
import type { EngineKind } from "./runner/protocol.js";

export type EngineSetting = "auto" | EngineKind;

/** The two ways to get a llama-server, for every message that needs one. */
export const HOW_TO_GET_LLAMA_SERVER =
  "set FREEHOLD_LLAMA_SERVER=/path/to/llama-server (from your package manager or llama.cpp's releases), or run `freehold engine build` (needs cmake and a C++ compiler)";

export interface LlamaServerLocation {
  /** The binary, when one is usable. */
  path?: string;
  /** Where it came from, or why there is none. */
  detail: string;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The folder builds are cached in: one per llama.cpp commit. */
export function enginesDirectory(home: string): string {
  return join(home, "engines");
}

/** Where a build for `commit` puts its binary. */
export function builtBinaryPath(directory: string): string {
  return join(directory, "build", "bin", "llama-server");
}

/**
 * The llama-server to use: the configured one (FREEHOLD_LLAMA_SERVER or freehold.yaml), else the newest build in
 * `cacheDirectories` (FREEHOLD_HOME/engines first). A configured path that is not an executable is an error, never
 * silently replaced by another binary.
 */
export function locateLlamaServer(configured: string | undefined, cacheDirectories: string[]): LlamaServerLocation {
  if (configured) {
    if (executable(configured)) return { path: configured, detail: `FREEHOLD_LLAMA_SERVER (${configured})` };
    return { detail: `FREEHOLD_LLAMA_SERVER names ${configured}, which is not an executable file` };
  }
  for (const cache of cacheDirectories) {
    if (!existsSync(cache)) continue;
    const builds = readdirSync(cache)
      .map((name) => join(cache, name))
      .filter((directory) => executable(builtBinaryPath(directory)))
      .sort((a, b) => statSync(builtBinaryPath(b)).mtimeMs - statSync(builtBinaryPath(a)).mtimeMs);
    if (builds[0]) return { path: builtBinaryPath(builds[0]), detail: `built by freehold engine build (${builds[0]})` };
  }
  return { detail: `no llama-server: ${HOW_TO_GET_LLAMA_SERVER}` };
}

/**
 * Which engine hosts a model. `auto` keeps node-llama-cpp (zero set-up) and takes llama-server for a model with a
 * projector when a binary is there; without one such a model still answers text on node-llama-cpp, and an image
 * gets a 400 naming the two ways to get llama-server. Asking for llama-server without a binary is an error.
 */
export function chooseEngine(
  setting: EngineSetting,
  model: { name: string; projector?: string; engine?: EngineSetting },
  llamaServer: LlamaServerLocation,
): { kind: EngineKind; binary?: string } {
  const wanted = model.engine ?? setting;
  if (wanted === "node-llama-cpp") return { kind: "node-llama-cpp" };
  if (wanted === "llama-server") {
    if (!llamaServer.path)
      throw new FreeholdError(
        `${model.name} is set to run on the llama-server engine, but ${llamaServer.detail.replace(/^no llama-server: /, "there is none: ")}`,
        { code: "engine_unavailable", status: 500, type: "server_error" },
      );
    return { kind: "llama-server", binary: llamaServer.path };
  }
  if (model.projector && llamaServer.path) return { kind: "llama-server", binary: llamaServer.path };
  return { kind: "node-llama-cpp" };
}

/** The node-llama-cpp package folder (it ships llama.cpp's source as llama/gitRelease.bundle). */
export function nodeLlamaCppDirectory(): string {
  let directory = dirname(fileURLToPath(import.meta.resolve("node-llama-cpp")));
  while (!existsSync(join(directory, "llama", "gitRelease.bundle"))) {
    const parent = dirname(directory);
    if (parent === directory) throw new Error("node-llama-cpp's llama/gitRelease.bundle was not found");
    directory = parent;
  }
  return directory;
}

/** The llama.cpp commit node-llama-cpp's bundle holds (the cache key of a build). */
export function bundledCommit(bundle: string): string {
  const heads = spawnSync("git", ["bundle", "list-heads", bundle], { encoding: "utf8" });
  if (heads.error)
    throw new FreeholdError("git is needed to unpack llama.cpp's source; install git", {
      code: "tool_missing",
      status: 500,
      type: "server_error",
    });
  const commit = /^([0-9a-f]{40})\s/m.exec(heads.stdout)?.[1];
  if (!commit)
    throw new FreeholdError(`could not read the commit of ${bundle}: ${heads.stderr.trim()}`, {
      code: "bundle_unreadable",
      status: 500,
      type: "server_error",
    });
  return commit;
}

export interface EngineStatus {
  name: EngineKind;
  available: boolean;
  detail: string;
}

/** What `freehold engine status` shows. */
export function engineStatus(llamaServer: LlamaServerLocation): EngineStatus[] {
  let bundled = "bundled with freehold (prebuilt llama.cpp bindings)";
  try {
    nodeLlamaCppDirectory();
  } catch (error) {
    bundled = (error as Error).message;
  }
  return [
    { name: "node-llama-cpp", available: true, detail: `${bundled}; text only (no images)` },
    {
      name: "llama-server",
      available: llamaServer.path !== undefined,
      detail: llamaServer.path ? `${llamaServer.detail}; text and images (with a projector)` : llamaServer.detail,
    },
  ];
}

export type GpuKind = "cuda" | "vulkan";

export interface BuildOptions {
  home: string;
  gpu?: GpuKind;
  /** Parallel compile jobs (default: the machine's cores). */
  jobs?: number;
  /** Each line the tools print (progress). */
  onLine: (line: string) => void;
  /** Where the source bundle is (tests: a small stand-in). */
  bundle?: string;
}

function which(tool: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" }).status === 0;
}

function run(command: string, args: string[], cwd: string, onLine: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let tail = "";
    const take = (chunk: Buffer) => {
      const text = chunk.toString("utf8");
      tail = (tail + text).slice(-4000);
      for (const line of text.split("\n")) if (line.trim()) onLine(line);
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    child.on("error", reject);
    child.on("exit", (code) =>
      code === 0
        ? resolve()
        : reject(
            new FreeholdError(
              `${command} ${args[0] ?? ""} failed (exit code ${code}):\n${tail.trim().split("\n").slice(-15).join("\n")}`,
              {
                code: "engine_build_failed",
                status: 500,
                type: "server_error",
              },
            ),
          ),
    );
  });
}

/**
 * Builds llama-server from node-llama-cpp's bundled llama.cpp source into FREEHOLD_HOME/engines/<commit>/ (a
 * static binary: nothing to find at run time). A finished build for the same commit and GPU is reused.
 */
export async function buildLlamaServer(
  options: BuildOptions,
): Promise<{ path: string; commit: string; cached: boolean }> {
  const missing = ["git", "cmake"].filter((tool) => !which(tool));
  const compiler = ["c++", "g++", "clang++"].find(which);
  if (!compiler) missing.push("a C++ compiler (g++ or clang++)");
  if (missing.length > 0)
    throw new FreeholdError(
      `freehold engine build needs ${missing.join(", ")}; install ${missing.length > 1 ? "them" : "it"} (Debian/Ubuntu: apt-get install git cmake g++ ninja-build), or set FREEHOLD_LLAMA_SERVER to a llama-server you have`,
      { code: "tool_missing", status: 500, type: "server_error" },
    );
  if (options.gpu === "cuda" && !which("nvcc"))
    throw new FreeholdError("--gpu cuda needs the CUDA toolkit (nvcc on PATH)", {
      code: "tool_missing",
      status: 500,
      type: "server_error",
    });
  if (options.gpu === "vulkan" && !which("glslc"))
    throw new FreeholdError("--gpu vulkan needs the Vulkan SDK (glslc on PATH)", {
      code: "tool_missing",
      status: 500,
      type: "server_error",
    });
  const bundle = options.bundle ?? join(nodeLlamaCppDirectory(), "llama", "gitRelease.bundle");
  const commit = bundledCommit(bundle);
  const name = `${commit.slice(0, 12)}${options.gpu ? `-${options.gpu}` : "-cpu"}`;
  const target = join(enginesDirectory(options.home), name);
  if (executable(builtBinaryPath(target))) return { path: builtBinaryPath(target), commit, cached: true };
  const work = `${target}.partial`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  options.onLine(`unpacking llama.cpp ${commit.slice(0, 12)} from ${bundle}`);
  await run("git", ["clone", "--quiet", bundle, "source"], work, options.onLine);
  const generator = which("ninja") ? ["-G", "Ninja"] : [];
  await run(
    "cmake",
    [
      "-S",
      "source",
      "-B",
      "build",
      ...generator,
      "-DCMAKE_BUILD_TYPE=Release",
      "-DBUILD_SHARED_LIBS=OFF",
      "-DLLAMA_CURL=OFF",
      "-DLLAMA_BUILD_TESTS=OFF",
      "-DLLAMA_BUILD_EXAMPLES=OFF",
      "-DLLAMA_BUILD_SERVER=ON",
      "-DGGML_NATIVE=ON",
      ...(options.gpu === "cuda" ? ["-DGGML_CUDA=ON"] : []),
      ...(options.gpu === "vulkan" ? ["-DGGML_VULKAN=ON"] : []),
    ],
    work,
    options.onLine,
  );
  const jobs = options.jobs ?? Math.max(1, cpus().length);
  await run("cmake", ["--build", "build", "--target", "llama-server", "-j", String(jobs)], work, options.onLine);
  if (!executable(builtBinaryPath(work)))
    throw new FreeholdError(`the build finished but ${builtBinaryPath(work)} is not there`, {
      code: "engine_build_failed",
      status: 500,
      type: "server_error",
    });
  rmSync(target, { recursive: true, force: true });
  renameSync(work, target);
  return { path: builtBinaryPath(target), commit, cached: false };
}
