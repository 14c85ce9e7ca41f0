import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { after, describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import { runCli } from "./helpers/cli.js";
import { projectRoot, temporaryDirectory } from "./helpers/paths.js";

// Issue 20: the CLI tried as a person with Ollama and Unix habits would, always through the real program.

const directory = temporaryDirectory("freehold-cli-exit-");
after(directory.dispose);
let counter = 0;

function freshHome(): { home: string; cli: (...args: string[]) => ReturnType<typeof runCli> } {
  const home = join(directory.path, `home-${counter++}`);
  return { home, cli: (...args) => runCli(["--home", home, ...args]) };
}

/** Runs the CLI with its stdout closed by the reader before it writes, as `freehold list | head -0` does. */
function runWithClosedStdout(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const tsx = pathToFileURL(resolve(projectRoot, "node_modules/tsx/dist/loader.mjs")).href;
    const child = spawn(process.execPath, ["--import", tsx, resolve(projectRoot, "src/cli/entry.ts"), ...args], {
      cwd: projectRoot,
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout.destroy();
    let stderr = "";
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stderr });
    });
  });
}

describe("pipes (item 3)", () => {
  test("a reader that stops early (| head) ends every printing command quietly, with no EPIPE stack", async () => {
    const { home } = freshHome();
    for (const args of [["list"], ["audit", "list"], ["keys", "list"], ["usage"], ["--help"], ["list", "--json"]]) {
      const result = await runWithClosedStdout(["--home", home, ...args]);
      assert.equal(result.stderr, "", `freehold ${args.join(" ")} wrote to stderr: ${result.stderr}`);
      assert.equal(result.code, 0, `freehold ${args.join(" ")}`);
    }
  });
});

describe("exit codes and friendly errors (item 5)", () => {
  test("usage errors exit 2: an unknown flag, a missing argument, an unknown command, a bad flag value", async () => {
    const { cli } = freshHome();
    for (const args of [
      ["list", "--bogus"],
      ["show"],
      ["frobnicate"],
      ["audit", "list", "--limit", "zero"],
      ["usage", "--format", "xml"],
      ["keys", "create"],
    ]) {
      const result = await cli(...args);
      assert.equal(result.code, 2, `freehold ${args.join(" ")}: ${result.stderr}`);
      assert.equal(result.stdout, "", `freehold ${args.join(" ")} printed to stdout`);
      assert.notEqual(result.stderr, "");
    }
  });

  test("help and version exit 0", async () => {
    const { cli } = freshHome();
    for (const args of [["--help"], ["list", "--help"], ["--version"]]) {
      const result = await cli(...args);
      assert.equal(result.code, 0, `freehold ${args.join(" ")}`);
    }
  });

  test("a failed check exits 1 (audit verify on a tampered trail is covered elsewhere; a failed operation here)", async () => {
    const { cli } = freshHome();
    const result = await cli("rm", "no-such-model");
    assert.equal(result.code, 1, result.stderr);
  });

  test("a directory given to import is named, with what to pass instead, never a Node error code", async () => {
    const { cli } = freshHome();
    const folder = join(directory.path, "models-folder");
    mkdirSync(folder, { recursive: true });
    const result = await cli("import", folder, "--name", "x");
    assert.equal(result.code, 1);
    assert.match(result.stderr, /models-folder is a directory/);
    assert.match(result.stderr, /\.gguf file/);
    assert.doesNotMatch(result.stderr, /EISDIR|illegal operation/);
  });

  test("missing files are named plainly (import, --config, config check, eval)", async () => {
    const { cli } = freshHome();
    const missing = join(directory.path, "nowhere", "missing.file");
    for (const args of [
      ["import", missing, "--name", "x"],
      ["--config", missing, "doctor"],
      ["config", "check", missing],
      ["eval", missing, "--models", "x"],
    ]) {
      const result = await cli(...args);
      assert.equal(result.code, 1, `freehold ${args.join(" ")}: ${result.stderr}`);
      assert.match(result.stderr, /missing\.file/, `freehold ${args.join(" ")}`);
      assert.match(result.stderr, /does not exist|no such file/i, `freehold ${args.join(" ")}: ${result.stderr}`);
      assert.doesNotMatch(result.stderr, /ENOENT|\n\s+at /, `freehold ${args.join(" ")}: ${result.stderr}`);
    }
  });

  test("a port already in use names the port and the flag to change it", async (t) => {
    const blocker = createServer();
    await new Promise<void>((done) => blocker.listen(0, "127.0.0.1", done));
    t.after(() => blocker.close());
    const port = (blocker.address() as { port: number }).port;
    const { cli } = freshHome();
    const result = await cli("serve", "--no-demo", "--port", String(port));
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use`));
    assert.match(result.stderr, /--port/);
    assert.match(result.stderr, /FREEHOLD_PORT|FREEHOLD_HOST/);
    assert.doesNotMatch(result.stderr, /EADDRINUSE|\n\s+at /);
  });
});
