import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import OpenAI from "openai";
import { GgufValueType, synthesizeModel, writeGgufFile } from "../src/gguf/index.js";
import { runCli } from "./helpers/cli.js";
import { completeLily } from "./helpers/openaiChecks.js";
import { storiesModelMissing, storiesModelPath, temporaryDirectory } from "./helpers/paths.js";
import { postJson, startServerProcess } from "./helpers/server.js";
import { longStream, readToEnd, startStream } from "./helpers/streams.js";

function childPids(pid: number): number[] {
  try {
    return execFileSync("pgrep", ["-P", String(pid)], { encoding: "utf8" })
      .split("\n")
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("server lifecycle", () => {
  test("an empty store gets the packaged stories260K as demo:stories: a real story, offline; the notice says what it is", async () => {
    const server = await startServerProcess();
    try {
      assert.match(server.output(), /installed demo:stories: stories260K, a tiny real model/);
      assert.match(server.output(), /freehold import FILE.gguf --name NAME/);
      const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
      await completeLily(client, "demo:stories");
      const list = await client.models.list();
      assert.deepEqual(
        list.data.map((m) => m.id),
        ["demo:stories"],
      );
    } finally {
      await server.dispose();
    }
  });

  test("SIGTERM lets an in-flight stream finish, then exits leaving no runner behind", {
    skip: storiesModelMissing,
  }, async () => {
    const server = await startServerProcess({ models: { stories: storiesModelPath }, args: ["--drain-timeout", "20"] });
    try {
      const { reader } = await startStream(`${server.url}/v1/completions`, {
        ...longStream,
        max_tokens: 1500,
        temperature: 0,
        stream_options: { include_usage: true },
      });
      const runners = childPids(server.child.pid!);
      assert.ok(runners.length >= 1, "a runner process is running");
      const exited = server.stop("SIGTERM");
      const text = await readToEnd(reader);
      assert.match(text, /"completion_tokens":1500/, "the answer ran to its end");
      assert.match(text, /data: \[DONE\]/);
      assert.equal(await exited, 0);
      await new Promise((resolve) => setTimeout(resolve, 200));
      for (const pid of runners) assert.equal(alive(pid), false, `runner ${pid} is gone`);
    } finally {
      await server.dispose();
    }
  });

  test("with --drain-timeout 0, SIGTERM aborts in-flight answers at once and exits", {
    skip: storiesModelMissing,
  }, async () => {
    const server = await startServerProcess({ models: { stories: storiesModelPath }, args: ["--drain-timeout", "0"] });
    try {
      const stream = await startStream(`${server.url}/v1/completions`, longStream);
      const runners = childPids(server.child.pid!);
      const started = Date.now();
      const code = await server.stop("SIGTERM");
      assert.equal(code, 0);
      assert.ok(Date.now() - started < 5000);
      await stream.hangUp();
      for (const pid of runners) assert.equal(alive(pid), false);
    } finally {
      await server.dispose();
    }
  });
});

describe("untrusted chat templates", () => {
  const directory = temporaryDirectory();
  after(directory.dispose);

  test("a template that reaches for constructors or the process is an error for that request, nothing runs", async () => {
    const path = join(directory.path, "hostile.gguf");
    const model = synthesizeModel({ preset: "tiny", quant: "f32", seed: 5 });
    const marker = join(directory.path, "pwned");
    model.metadata.set("tokenizer.chat_template", {
      type: GgufValueType.STRING,
      value: `{% for m in messages %}{{ m.content.constructor.constructor("require('fs').writeFileSync('${marker}','x'); process.exit(9)")() }}{{ cycler.__init__.__globals__.os.popen('touch ${marker}').read() }}{% endfor %}`,
    });
    writeGgufFile(path, model);
    const server = await startServerProcess({ models: { hostile: path } });
    try {
      const response = await postJson(`${server.url}/v1/chat/completions`, {
        model: "hostile",
        messages: [{ role: "user", content: "hi" }],
      });
      assert.equal(response.status, 400);
      const body = (await response.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, "chat_template_error");
      assert.match(body.error.message, /chat template/);
      const { existsSync } = await import("node:fs");
      assert.equal(existsSync(marker), false, "the template ran nothing");
      // The runner survived and raw completion still works on the same model.
      const completion = await postJson(`${server.url}/v1/completions`, {
        model: "hostile",
        prompt: "hi",
        max_tokens: 3,
      });
      assert.equal(completion.status, 200);
      const health = await fetch(`${server.url}/health`);
      assert.equal(health.status, 200);
    } finally {
      await server.dispose();
    }
  });
});

describe("a model file that passes validation but llama.cpp cannot load", () => {
  const directory = temporaryDirectory();
  after(directory.dispose);

  test("gets an error that says why, and the server carries on", async () => {
    const path = join(directory.path, "unknown-arch.gguf");
    const model = synthesizeModel({ preset: "tiny", quant: "f32", seed: 2 });
    model.metadata.set("general.architecture", { type: GgufValueType.STRING, value: "nonesuch" });
    writeGgufFile(path, model);
    const server = await startServerProcess({ models: { broken: path }, args: ["--no-demo"] });
    try {
      const response = await postJson(`${server.url}/v1/completions`, { model: "broken", prompt: "x" });
      assert.equal(response.status, 500);
      const body = (await response.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, "model_load_failed");
      assert.match(body.error.message, /unknown model architecture: 'nonesuch'/);
      const health = await fetch(`${server.url}/health`);
      assert.equal(health.status, 503, "nothing can serve: the only model failed to start");
      assert.match(((await health.json()) as { error: string }).error, /nonesuch/);
      // The admin's copy of the reason is in the server log (pino), with the model it concerns.
      assert.match(server.output(), /"msg":"model runner load-failed"/);
      assert.match(server.output(), /"model":"broken:latest".*unknown model architecture/);
      assert.equal(server.child.exitCode, null, "the server is still running");
    } finally {
      await server.dispose();
    }
  });
});

describe("freehold run and ps", { skip: storiesModelMissing }, () => {
  test("run answers one prompt from the command line and from stdin", async () => {
    const home = temporaryDirectory();
    try {
      const env = { FREEHOLD_HOME: home.path };
      assert.equal((await runCli(["import", storiesModelPath, "--name", "stories"], { env })).code, 0);
      const fromArgs = await runCli(
        ["run", "stories", "--raw", "--temperature", "0", "--max-tokens", "10", "Once upon a time"],
        { env },
      );
      assert.equal(fromArgs.code, 0, fromArgs.stderr);
      assert.equal(fromArgs.stdout, ", there was a little girl named Lily\n");
      const fromStdin = await runCli(["run", "stories", "--raw", "--temperature", "0", "--max-tokens", "10"], {
        env,
        input: "Once upon a time\n",
      });
      assert.equal(fromStdin.stdout, ", there was a little girl named Lily\n");
      const bad = await runCli(["run", "stories", "--temperature", "warm", "x"], { env });
      assert.equal(bad.code, 2, "a bad flag value is a usage error (issue 20)");
      assert.match(bad.stderr, /--temperature must be a number/);
      const missing = await runCli(["run", "nope", "x"], { env });
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /The model 'nope' does not exist/);
    } finally {
      home.dispose();
    }
  });

  test("ps lists what a running server has loaded", async () => {
    const server = await startServerProcess({ models: { stories: storiesModelPath } });
    try {
      const port = new URL(server.url).port;
      const empty = await runCli(["ps", "--port", port], { env: { FREEHOLD_HOME: server.home } });
      assert.equal(empty.code, 0);
      assert.doesNotMatch(empty.stdout, /stories/);
      await postJson(`${server.url}/v1/completions`, { model: "stories", prompt: "x", max_tokens: 1 });
      const loaded = await runCli(["ps", "--port", port], { env: { FREEHOLD_HOME: server.home } });
      assert.match(
        loaded.stdout,
        /^NAME\s+MEMORY\s+STATE\s+BUSY\s+QUEUED\s+THREADS\s+CONTEXT\s+KV CACHE\s+PROCESSOR\s+UNLOADS/m,
      );
      assert.match(
        loaded.stdout,
        /stories:latest\s+\d+ MB\s+ready\s+0\/4\s+0\s+1\s+2048\s+f16 fa=auto\s+cpu\s+in \d+s/,
      );
      const none = await runCli(["ps", "--port", "1"], { env: { FREEHOLD_HOME: server.home } });
      assert.equal(none.code, 1);
      assert.match(none.stderr, /no freehold server answered/);
    } finally {
      await server.dispose();
    }
  });
});
