import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { temporaryDirectory } from "../../test/helpers/paths.js";
import { FreeholdError, StoreError, withoutPaths } from "../core/errors.js";
import { anthropicErrorBody } from "../http/anthropic/errors.js";
import { ollamaErrorBody } from "../http/ollama/errors.js";
import { openAIErrorBody } from "../http/openai/errors.js";
import type { LoadOptions } from "./runner/protocol.js";
import { type RunnerDiagnostic, RunnerProcess } from "./runnerProcess.js";

const directory = temporaryDirectory("freehold-runner-stand-in-");
after(directory.dispose);

const secretPath = "/home/owner/.freehold/blobs/sha256-0123456789abcdef";

/** A stand-in runner speaking the protocol: `behaviour` decides what it does when asked to load or generate. */
function standIn(name: string, behaviour: string): { path: string; execArgv: string[] } {
  const path = join(directory.path, `${name}.mjs`);
  writeFileSync(
    path,
    `const info = { vramBytes: 0, contextSize: 64, trainContextSize: 64, threads: 1, busyThreads: 1, sequences: 1,
      vocabularySize: 10, embeddingLength: 8, hasChatTemplate: false, chatFormat: "none", backend: "cpu", gpuLayers: 0,
      loadMs: 1 };
    process.on("message", (message) => { ${behaviour} });
    process.send({ type: "ready" });`,
  );
  return { path, execArgv: [] };
}

const load = { paths: ["/x.gguf"] } as unknown as LoadOptions;

/** Starts a stand-in runner with its diagnostics collected; it gets an empty environment, as it needs none. */
function startStandIn(name: string, behaviour: string) {
  const diagnostics: RunnerDiagnostic[] = [];
  const entry = standIn(name, behaviour);
  const started = RunnerProcess.start({ load, env: {}, entry, onDiagnostic: (d) => diagnostics.push(d) });
  return { started, diagnostics };
}

/** The error of a start that must fail. */
function failedStart(started: Promise<RunnerProcess>, why: string): Promise<unknown> {
  return started.then(
    () => assert.fail(why),
    (e: unknown) => e,
  );
}

function clientTexts(error: unknown): string[] {
  return [openAIErrorBody(error).body, anthropicErrorBody(error).body, ollamaErrorBody(error).body].map((body) =>
    JSON.stringify(body),
  );
}

describe("what a runner's failure tells a client, and what only the server log gets", () => {
  test("a runner that crashes: its stderr (paths, asserts) goes to the log, never into the client's error", async () => {
    const { started, diagnostics } = startStandIn(
      "crash",
      `if (message.type === "load") { process.stderr.write("GGML_ASSERT(n_tokens <= n_batch) failed at ${secretPath}/ggml.c:1234\\n", () => process.exit(134)); }`,
    );
    const error = await failedStart(started, "the runner should not start");
    assert.ok(error instanceof FreeholdError);
    assert.equal(error.code, "runner_crashed");
    assert.match(
      error.message,
      /the model runner stopped unexpectedly \(exit code 134\); the server log has the details/,
    );
    for (const text of [error.message, ...clientTexts(error)]) {
      assert.equal(text.includes("GGML_ASSERT"), false, text);
      assert.equal(text.includes("/home/owner"), false, text);
    }
    const crash = diagnostics.find((d) => d.kind === "crashed");
    assert.ok(crash, "the crash is reported for the log");
    assert.match(crash.stderr ?? "", /GGML_ASSERT\(n_tokens <= n_batch\) failed at \/home\/owner/);
  });

  test("an unexpected exception in the runner: a stable message for the client, the original for the log", async () => {
    const { started, diagnostics } = startStandIn(
      "throws",
      `if (message.type === "load") process.send({ type: "loaded", info });
       if (message.type === "generate") process.send({ type: "failed", id: message.id, error: {
         message: "ENOENT: no such file or directory, open '${secretPath}'", code: "runner_error", status: 500,
         retryable: false, param: null } });
       if (message.type === "shutdown") process.exit(0);`,
    );
    const runner = await started;
    try {
      const events = runner.generate({
        kind: "completion",
        model: "m",
        prompt: "x",
        sampling: {},
        limits: { maxTokens: 1 },
      });
      const error = await (async () => {
        for await (const _ of events) {
          // nothing arrives
        }
      })().then(
        () => assert.fail("generation should fail"),
        (e: unknown) => e,
      );
      assert.ok(error instanceof FreeholdError);
      assert.equal(error.code, "runner_error");
      assert.match(
        error.message,
        /the model runner failed on this request \(runner_error\); the server log has the details/,
      );
      for (const text of clientTexts(error)) assert.equal(text.includes("ENOENT"), false, text);
      assert.match(diagnostics.find((d) => d.kind === "request-failed")?.message ?? "", /ENOENT: .*\/home\/owner/);
    } finally {
      await runner.stop();
    }
  });

  test("a model llama.cpp cannot load: the reason reaches the client without the server's paths, whole in the log", async () => {
    const { started, diagnostics } = startStandIn(
      "load-failed",
      `if (message.type === "load") process.send({ type: "load-failed", error: {
         message: "llama.cpp could not load the model: failed to open ${secretPath}: Permission denied",
         code: "model_load_failed", status: 500, retryable: false, param: null } });`,
    );
    const error = await failedStart(started, "the load should fail");
    assert.ok(error instanceof FreeholdError);
    assert.equal(error.code, "model_load_failed");
    for (const text of clientTexts(error)) {
      assert.match(text, /llama\.cpp could not load the model: failed to open <path>: Permission denied/);
      assert.equal(text.includes("/home/owner"), false, text);
    }
    assert.match(diagnostics.find((d) => d.kind === "load-failed")?.message ?? "", /\/home\/owner/);
  });

  test("every API's error mapper strips file system paths of any spelling, and keeps API routes", () => {
    const paths = [
      "/home/owner/.freehold",
      "/tmp/freehold-x/blobs/sha256-1",
      "~/.freehold/models",
      "C:\\Users\\owner\\.freehold\\blobs",
      "C:/Users/owner/.freehold",
      "\\\\nas\\share\\models\\m.gguf",
      "//nas/share/m.gguf",
      "/v1x/secret",
    ];
    for (const path of paths)
      for (const spelling of [`at ${path}`, `'${path}'`, `"${path}"`, `(${path})`, `file=${path}`, `${path}: gone`]) {
        const error = new StoreError(`model "m" is missing its file ${spelling}; import it again`, "missing_blob", 500);
        for (const text of clientTexts(error)) assert.equal(text.includes(path), false, `${path} leaked in ${text}`);
      }
    assert.equal(
      withoutPaths("use POST /api/pull, or /v1/chat/completions, GET /admin/keys"),
      "use POST /api/pull, or /v1/chat/completions, GET /admin/keys",
    );
    assert.equal(withoutPaths("1/2 of the tokens"), "1/2 of the tokens");
    // A client error keeps the client's own JSON pointers, but never the server's directories.
    const schema = new FreeholdError('response_format at /properties/name/pattern: "pattern" cannot be enforced', {
      code: "invalid_request",
      status: 400,
      type: "invalid_request_error",
    });
    for (const text of clientTexts(schema)) assert.match(text, /at \/properties\/name\/pattern:/);
    for (const directory of [homedir(), tmpdir()]) {
      const notFound = new StoreError(
        `model "m" is not in the store at ${join(directory, ".freehold")}`,
        "model_not_found",
        404,
      );
      for (const text of clientTexts(notFound)) assert.equal(text.includes(directory), false, text);
    }
    // A huge message is cut before it is scanned: bounded time whatever a client echoed into it.
    const started = performance.now();
    withoutPaths(" /a".repeat(1_000_000));
    assert.ok(performance.now() - started < 200);
  });
});
