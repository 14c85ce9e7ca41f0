import assert from "node:assert/strict";
import { createServer } from "node:net";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { OLLAMA_API_LEVEL } from "../src/http/ollama/routes.js";
import { VERSION } from "../src/version.js";
import { runCli } from "./helpers/cli.js";
import { temporaryDirectory } from "./helpers/paths.js";
import { startServerProcess } from "./helpers/server.js";

// Issue 20: the CLI tried as a person with Ollama and Unix habits would, always through the real program.

const directory = temporaryDirectory("freehold-cli-env-");
after(directory.dispose);

describe("Ollama's environment shapes (item 2)", () => {
  test("FREEHOLD_HOST=host:port sets both; FREEHOLD_KEEP_ALIVE takes durations", async (t) => {
    const server = await startServerProcess({
      args: ["--no-demo"],
      env: { FREEHOLD_KEEP_ALIVE: "1h30m" },
    });
    t.after(() => server.dispose());
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    // The helper passes --port 0; a second server named only by FREEHOLD_HOST must take that port.
    const probe = createServer();
    await new Promise<void>((done) => probe.listen(0, "127.0.0.1", done));
    const free = (probe.address() as { port: number }).port;
    await new Promise((done) => probe.close(done));
    const second = await startServerProcess({
      args: ["--no-demo"],
      env: { FREEHOLD_HOST: `127.0.0.1:${free}` },
      portFromEnvironment: true,
    });
    t.after(() => second.dispose());
    assert.equal(second.url, `http://127.0.0.1:${free}`);
    // Item 16: Ollama clients probe /api/version for the Ollama API level, never freehold's own 0.x.
    const version = await fetch(`${second.url}/api/version`);
    assert.deepEqual(await version.json(), { version: OLLAMA_API_LEVEL, freehold: VERSION });
  });

  test("a bad setting names the variable the person set, for each variable", async () => {
    for (const [variable, value] of [
      ["FREEHOLD_PORT", "eleven"],
      ["FREEHOLD_HOST", "127.0.0.1:port"],
      ["FREEHOLD_HOST", "ftp://example.com"],
      ["FREEHOLD_KEEP_ALIVE", "soon"],
      ["FREEHOLD_PARALLEL", "0"],
      ["FREEHOLD_CONTEXT_SIZE", "huge"],
      ["FREEHOLD_MEMORY_BUDGET", "lots"],
      ["FREEHOLD_LOG_LEVEL", "loud"],
    ] as const) {
      const result = await runCli(["--home", join(directory.path, "unused"), "serve", "--no-demo"], {
        env: { [variable]: value },
        timeoutMs: 30_000,
      });
      assert.equal(result.code, 1, `${variable}=${value}: ${result.stdout}${result.stderr}`);
      assert.match(result.stderr, new RegExp(variable), `${variable}=${value}: ${result.stderr}`);
    }
  });

  test("a port written twice must agree", async () => {
    const result = await runCli(["ps"], { env: { FREEHOLD_HOST: "127.0.0.1:7000", FREEHOLD_PORT: "7001" } });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /FREEHOLD_HOST names port 7000 but FREEHOLD_PORT says 7001/);
  });
});
