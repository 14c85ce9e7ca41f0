import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { buildLlamaServer, chooseEngine, locateLlamaServer } from "../src/engine/engines.js";
import { runCli } from "./helpers/cli.js";
import { temporaryDirectory } from "./helpers/paths.js";

/**
 * `freehold engine status` and `freehold engine build`, and the choice of engine per model. The build is exercised on
 * a small stand-in CMake project bundled like node-llama-cpp's llama.cpp (a real build of llama-server takes tens of
 * minutes; .ci/run does that one).
 */

const directory = temporaryDirectory("freehold-engine-");
after(() => directory.dispose());
const env = (extra: Record<string, string> = {}) => ({
  ...process.env,
  FREEHOLD_HOME: join(directory.path, "home"),
  FREEHOLD_LLAMA_SERVER: "",
  FREEHOLD_ENGINE: "",
  ...extra,
});

interface Status {
  setting: string;
  engines: { name: string; available: boolean; detail: string }[];
}

describe("freehold engine status", () => {
  test("without a llama-server it says so and names both ways to get one; a configured binary is used", async () => {
    const none = await runCli(["engine", "status", "--json"], { env: env() });
    assert.equal(none.code, 0, none.stderr);
    const status = JSON.parse(none.stdout) as Status;
    assert.equal(status.setting, "auto");
    assert.equal(status.engines.find((e) => e.name === "node-llama-cpp")?.available, true);
    const server = status.engines.find((e) => e.name === "llama-server")!;
    assert.equal(server.available, false);
    assert.match(server.detail, /FREEHOLD_LLAMA_SERVER/);
    assert.match(server.detail, /freehold engine build/);

    const missing = await runCli(["engine", "status", "--json"], {
      env: env({ FREEHOLD_LLAMA_SERVER: join(directory.path, "nope") }),
    });
    assert.match((JSON.parse(missing.stdout) as Status).engines[1]!.detail, /not an executable file/);

    const fake = join(directory.path, "llama-server");
    writeFileSync(fake, "#!/bin/sh\nexit 0\n");
    chmodSync(fake, 0o755);
    const found = await runCli(["engine", "status"], { env: env({ FREEHOLD_LLAMA_SERVER: fake }) });
    assert.match(found.stdout, /llama-server\s+available\s+FREEHOLD_LLAMA_SERVER/);
  });

  test("a bad FREEHOLD_ENGINE is refused naming the variable and the choices", async () => {
    const bad = await runCli(["engine", "status"], { env: env({ FREEHOLD_ENGINE: "vllm" }) });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /FREEHOLD_ENGINE="vllm".*auto, node-llama-cpp or llama-server/);
  });
});

describe("freehold engine build", () => {
  test("a bad --gpu or --jobs is a usage error (exit 2)", async () => {
    const gpu = await runCli(["engine", "build", "--gpu", "metal"], { env: env() });
    assert.equal(gpu.code, 2);
    assert.match(gpu.stderr, /--gpu must be cuda or vulkan/);
    const jobs = await runCli(["engine", "build", "--jobs", "0"], { env: env() });
    assert.equal(jobs.code, 2);
  });

  test("missing cmake or compiler: an error that names what to install, and nothing is built", async () => {
    // A PATH with git and sh but no cmake and no compiler.
    const bin = join(directory.path, "bin");
    mkdirSync(bin, { recursive: true });
    for (const tool of ["git", "sh"]) {
      const path = execFileSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" }).trim();
      symlinkSync(path, join(bin, tool));
    }
    const result = await runCli(["engine", "build"], { env: env({ PATH: bin }) });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /needs cmake, a C\+\+ compiler/);
    assert.match(result.stderr, /apt-get install/);
    assert.match(result.stderr, /FREEHOLD_LLAMA_SERVER/);
  });

  test("builds a bundled CMake source into FREEHOLD_HOME/engines/<commit>-cpu, reuses it, and the engine finds it", async () => {
    const source = join(directory.path, "source");
    mkdirSync(source, { recursive: true });
    writeFileSync(
      join(source, "CMakeLists.txt"),
      [
        "cmake_minimum_required(VERSION 3.14)",
        "project(standin CXX)",
        // biome-ignore lint/suspicious/noTemplateCurlyInString: CMake's own variable syntax
        "set(CMAKE_RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)",
        "add_executable(llama-server main.cpp)",
        "",
      ].join("\n"),
    );
    writeFileSync(join(source, "main.cpp"), '#include <cstdio>\nint main() { std::puts("stand-in"); return 0; }\n');
    const git = (...args: string[]) => execFileSync("git", args, { cwd: source, stdio: "pipe" });
    git("init", "-q");
    git("add", ".");
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "stand-in");
    const bundle = join(directory.path, "source.bundle");
    git("bundle", "create", bundle, "HEAD");
    const commit = execFileSync("git", ["rev-parse", "HEAD"], { cwd: source, encoding: "utf8" }).trim();
    const home = join(directory.path, "build-home");
    const lines: string[] = [];
    const built = await buildLlamaServer({ home, bundle, jobs: 1, onLine: (line) => lines.push(line) });
    assert.equal(built.cached, false);
    assert.equal(built.commit, commit);
    assert.equal(built.path, join(home, "engines", `${commit.slice(0, 12)}-cpu`, "build", "bin", "llama-server"));
    assert.equal(execFileSync(built.path, { encoding: "utf8" }).trim(), "stand-in");
    assert.ok(
      lines.some((line) => line.includes("unpacking llama.cpp")),
      "progress is reported",
    );
    const again = await buildLlamaServer({ home, bundle, onLine: () => {} });
    assert.deepEqual(again, { ...built, cached: true });
    const located = locateLlamaServer(undefined, [join(home, "engines")]);
    assert.equal(located.path, built.path);
  });
});

describe("which engine a model gets", () => {
  const binary = { path: "/opt/llama-server", detail: "configured" };
  const none = { detail: "no llama-server: set FREEHOLD_LLAMA_SERVER=… or run `freehold engine build`" };
  test("auto: a projector goes to llama-server when there is one, else node-llama-cpp; a profile's engine wins", () => {
    assert.deepEqual(chooseEngine("auto", { name: "m" }, binary), { kind: "node-llama-cpp" });
    assert.deepEqual(chooseEngine("auto", { name: "m", projector: "/p" }, binary), {
      kind: "llama-server",
      binary: "/opt/llama-server",
    });
    assert.deepEqual(chooseEngine("auto", { name: "m", projector: "/p" }, none), { kind: "node-llama-cpp" });
    assert.deepEqual(chooseEngine("llama-server", { name: "m", engine: "node-llama-cpp" }, binary), {
      kind: "node-llama-cpp",
    });
    assert.deepEqual(chooseEngine("node-llama-cpp", { name: "m", engine: "llama-server" }, binary), {
      kind: "llama-server",
      binary: "/opt/llama-server",
    });
  });
  test("llama-server without a binary is an error naming the model and both ways to get one", () => {
    assert.throws(
      () => chooseEngine("llama-server", { name: "mine" }, none),
      (error: Error & { code?: string }) =>
        error.code === "engine_unavailable" &&
        /mine/.test(error.message) &&
        /FREEHOLD_LLAMA_SERVER/.test(error.message) &&
        /freehold engine build/.test(error.message),
    );
  });
});
