import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ModelStore } from "../src/store/index.js";
import { findAdoptableModels, modelLocations } from "../src/supply/index.js";
import { runCli } from "./helpers/cli.js";
import { writeSmallGguf } from "./helpers/gguf.js";
import { temporaryDirectory } from "./helpers/paths.js";

/** An Ollama models folder (manifests/ + blobs/) holding one model, as `ollama pull NAME:TAG` leaves it. */
function fakeOllama(models: string, name: string, tag: string, seed: number, namespace = "library"): void {
  mkdirSync(models, { recursive: true });
  const source = writeSmallGguf(join(models, `.source-${seed}.gguf`), seed);
  const bytes = readFileSync(source);
  const hex = createHash("sha256").update(bytes).digest("hex");
  mkdirSync(join(models, "blobs"), { recursive: true });
  writeFileSync(join(models, "blobs", `sha256-${hex}`), bytes);
  const manifests = join(models, "manifests", "registry.ollama.ai", namespace, name);
  mkdirSync(manifests, { recursive: true });
  writeFileSync(
    join(manifests, tag),
    JSON.stringify({
      schemaVersion: 2,
      layers: [{ mediaType: "application/vnd.ollama.image.model", digest: `sha256:${hex}`, size: bytes.length }],
    }),
  );
}

/** A Hugging Face hub cache repository: blobs/ holds the bytes, snapshots/REV/ links to them (as huggingface_hub does). */
function fakeHfCache(hub: string, owner: string, repo: string, file: string, seed: number): void {
  const repository = join(hub, `models--${owner}--${repo}`);
  mkdirSync(join(repository, "blobs"), { recursive: true });
  mkdirSync(join(repository, "refs"), { recursive: true });
  const snapshot = join(repository, "snapshots", "0123456789abcdef0123456789abcdef01234567");
  mkdirSync(snapshot, { recursive: true });
  const blob = join(repository, "blobs", `${seed}`.padStart(64, "e"));
  mkdirSync(join(repository, "blobs"), { recursive: true });
  writeSmallGguf(blob, seed);
  writeFileSync(join(repository, "refs", "main"), "0123456789abcdef0123456789abcdef01234567");
  // Relative, as huggingface_hub makes them: ../../blobs/<hash>.
  symlinkSync(join("..", "..", "blobs", `${seed}`.padStart(64, "e")), join(snapshot, file));
}

test("adopt finds Ollama models under OLLAMA_MODELS and the Linux service folder, and the HF cache under HF_HUB_CACHE or HF_HOME/hub", async (t) => {
  const scratch = temporaryDirectory("freehold-adopt-places-");
  t.after(scratch.dispose);
  const root = scratch.path;
  const home = join(root, "home"); // an empty home: nothing is found there
  const systemRoot = join(root, "system"); // stands for "/": never /usr itself in a test
  mkdirSync(home, { recursive: true });
  fakeOllama(join(root, "ollama-elsewhere"), "qwen", "0.5b", 41);
  fakeOllama(join(systemRoot, "usr", "share", "ollama", ".ollama", "models"), "llama3.2", "1b", 42);
  fakeOllama(join(systemRoot, "usr", "share", "ollama", ".ollama", "models"), "helper", "latest", 43, "someone");
  fakeHfCache(join(root, "hub-cache"), "owner", "Small-GGUF", "small-Q4_K_M.gguf", 44);
  fakeHfCache(join(root, "hf-home", "hub"), "other", "Tiny-GGUF", "tiny-Q8_0.gguf", 45);

  // HF_HUB_CACHE wins over HF_HOME, as in huggingface_hub.
  const env = {
    OLLAMA_MODELS: join(root, "ollama-elsewhere"),
    HF_HUB_CACHE: join(root, "hub-cache"),
    HF_HOME: join(root, "hf-home"),
  };
  const found = await findAdoptableModels({ home, env, systemRoot });
  assert.deepEqual(
    found.map((model) => [model.tool, model.suggestedName]),
    [
      ["ollama", "qwen:0.5b"],
      ["ollama", "llama3.2:1b"],
      ["ollama", "someone/helper:latest"],
      ["huggingface", "hf.co/owner/Small-GGUF:Q4_K_M"],
    ],
  );
  const withoutHubCache = await findAdoptableModels({ home, env: { HF_HOME: join(root, "hf-home") }, systemRoot });
  assert.deepEqual(
    withoutHubCache.map((model) => model.suggestedName),
    ["llama3.2:1b", "someone/helper:latest", "hf.co/other/Tiny-GGUF:Q8_0"],
  );
  // The same folder named twice (OLLAMA_MODELS = the default, through a link) is searched once.
  mkdirSync(join(home, ".ollama"), { recursive: true });
  symlinkSync(join(root, "ollama-elsewhere"), join(home, ".ollama", "models"));
  const twice = await findAdoptableModels({ home, env: { OLLAMA_MODELS: join(root, "ollama-elsewhere") }, systemRoot });
  assert.deepEqual(
    twice.map((model) => model.suggestedName),
    ["qwen:0.5b", "llama3.2:1b", "someone/helper:latest"],
  );
  assert.deepEqual(
    modelLocations({ home, env: {}, systemRoot }).map((location) => location.path),
    [
      join(home, ".ollama", "models"),
      join(systemRoot, "usr", "share", "ollama", ".ollama", "models"),
      join(home, ".lmstudio", "models"),
      join(home, ".cache", "lm-studio", "models"),
      join(home, ".cache", "huggingface", "hub"),
    ],
  );
  assert.ok(
    modelLocations({ home, env: {} }).some((location) => location.path === "/usr/share/ollama/.ollama/models"),
    "the real service folder by default",
  );

  // Through the CLI, as a person runs it: list, then adopt by number; the store points at the files in place.
  const freeholdHome = join(root, "freehold");
  const cliEnv = { ...env, FREEHOLD_HOME: freeholdHome, FREEHOLD_LOG_LEVEL: "warn" };
  const cli = (...args: string[]) =>
    runCli(["adopt", "--search-home", join(root, "empty-home"), "--search-root", systemRoot, ...args], { env: cliEnv });
  const listed = await cli();
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /1\s+ollama\s+qwen:0\.5b\s+[\d.]+ [KM]?B\s+.*ollama-elsewhere\/blobs\/sha256-/);
  assert.match(listed.stdout, /2\s+ollama\s+llama3\.2:1b\s+.*system\/usr\/share\/ollama\/\.ollama\/models\/blobs/);
  assert.match(
    listed.stdout,
    /4\s+huggingface\s+hf\.co\/owner\/Small-GGUF:Q4_K_M\s+.*hub-cache\/models--owner--Small-GGUF/,
  );
  const adopted = await cli("2", "4");
  assert.equal(adopted.code, 0, adopted.stderr);
  assert.match(adopted.stdout, /adopted llama3\.2:1b \(sha256:[0-9a-f]{64}\) by reference to /);
  assert.match(adopted.stdout, /adopted hf\.co\/owner\/Small-GGUF:Q4_K_M /);
  const store = new ModelStore({ home: freeholdHome });
  const details = await store.show("hf.co/owner/Small-GGUF:Q4_K_M");
  assert.ok(details.blobPaths[0]!.startsWith(join(root, "hub-cache")), "the HF blob itself, not a copy");

  // Nothing found: every place searched is named, with why.
  const nothing = await runCli(
    ["adopt", "--search-home", join(root, "empty-home"), "--search-root", join(root, "nope")],
    {
      env: { FREEHOLD_HOME: freeholdHome, OLLAMA_MODELS: join(root, "missing"), HF_HOME: "", HF_HUB_CACHE: "" },
    },
  );
  assert.equal(nothing.code, 0, nothing.stderr);
  assert.match(nothing.stdout, /no GGUF models found in:\n {2}.*missing {2}\(OLLAMA_MODELS\)\n/);
  assert.match(nothing.stdout, /nope\/usr\/share\/ollama\/\.ollama\/models {2}\(Ollama's service\)/);
  assert.match(nothing.stdout, /set OLLAMA_MODELS, HF_HUB_CACHE or HF_HOME if your models live elsewhere/);
});
