import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { runCli } from "./helpers/cli.js";
import { temporaryDirectory } from "./helpers/paths.js";
import { startServerProcess } from "./helpers/server.js";

// Issue 20: the CLI tried as a person with Ollama and Unix habits would, always through the real program.

const directory = temporaryDirectory("freehold-cli-server-");
after(directory.dispose);

describe("one way to name the server and send a key (item 1)", () => {
  test("ps, stop and explain reach a keyed server through --host/--api-key or FREEHOLD_HOST/FREEHOLD_API_KEY", async (t) => {
    const server = await startServerProcess({ args: ["--no-demo"] });
    t.after(() => server.dispose());
    const port = new URL(server.url).port;
    const home = { FREEHOLD_HOME: server.home };
    const created = await runCli(["keys", "create", "--name", "ops", "--admin"], { env: home });
    assert.equal(created.code, 0, created.stderr);
    const secret = created.stdout.trim();

    const refused = await runCli(["ps", "--port", port], { env: home });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /401/);
    assert.match(refused.stderr, /--api-key KEY or set FREEHOLD_API_KEY/);

    const ways: [string[], NodeJS.ProcessEnv][] = [
      [["--host", `127.0.0.1:${port}`, "--api-key", secret], {}],
      [["--host", `http://127.0.0.1:${port}`], { FREEHOLD_API_KEY: secret }],
      [[], { FREEHOLD_HOST: `127.0.0.1:${port}`, FREEHOLD_API_KEY: secret }],
      [[], { FREEHOLD_HOST: `http://localhost:${port}/`, FREEHOLD_API_KEY: secret }],
    ];
    for (const [flags, env] of ways) {
      const listed = await runCli(["ps", ...flags, "--json"], { env: { ...home, ...env } });
      assert.equal(listed.code, 0, `ps ${flags.join(" ")} ${JSON.stringify(env)}: ${listed.stderr}`);
      assert.deepEqual(JSON.parse(listed.stdout), { models: [] });
      const stopped = await runCli(["stop", "nope", ...flags], { env: { ...home, ...env } });
      assert.equal(stopped.code, 1);
      assert.match(stopped.stderr, /does not exist/, "the server was reached and answered about the model");
      const explained = await runCli(["explain", "no-such-request", ...flags], { env: { ...home, ...env } });
      assert.equal(explained.code, 1);
      assert.match(explained.stderr, /404/, explained.stderr);
    }
  });

  test("a server that is not there is named with the flag and variable that point elsewhere", async () => {
    const result = await runCli(["ps"], { env: { FREEHOLD_HOST: "127.0.0.1:1" } });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /no freehold server answered at http:\/\/127\.0\.0\.1:1/);
    assert.match(result.stderr, /--host or FREEHOLD_HOST/);
  });
});
