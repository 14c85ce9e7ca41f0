import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { runCli } from "./helpers/cli.js";
import { storiesModelMissing, storiesModelPath, temporaryDirectory } from "./helpers/paths.js";
import { startServerProcess } from "./helpers/server.js";

// Issue 20 item 8: `freehold run` uses the running server (a file of its own: spawning a server and five CLIs takes
// most of a test file's time budget on a busy machine).

const lily = ", there was a little girl named Lily";
const rawNote = /stories(:latest)? has no chat template: running it as raw text completion/;

describe("freehold run with a server", { skip: storiesModelMissing }, () => {
  test("with a server running, run answers through it: the model is loaded once, in the server, and ps shows it", async (t) => {
    const server = await startServerProcess({
      models: { stories: storiesModelPath },
      args: ["--no-demo"],
      env: { FREEHOLD_LOG_LEVEL: "info" },
    });
    t.after(() => server.dispose());
    const port = new URL(server.url).port;
    // Another home: this process has no models of its own, so an answer can only come from the server.
    const elsewhere = temporaryDirectory("freehold-run-client-");
    t.after(elsewhere.dispose);
    const env = { FREEHOLD_HOME: elsewhere.path, FREEHOLD_HOST: `127.0.0.1:${port}` };
    const first = await runCli(["run", "stories", "--temperature", "0", "--max-tokens", "10", "Once upon a time"], {
      env,
    });
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, `${lily}\n`);
    assert.match(first.stderr, rawNote, "the server's /api/show says there is no template");
    const session = await runCli(["run", "stories", "-i"], {
      env,
      input: "/set parameter temperature 0\n/set parameter num_predict 10\n/show info\nOnce upon a time\n/bye\n",
    });
    assert.equal(session.code, 0, session.stderr);
    assert.match(session.stdout, new RegExp(`answered by +the server at http://127\\.0\\.0\\.1:${port}`));
    assert.match(session.stdout, new RegExp(`\\n${lily}\\n$`));

    const ps = await runCli(["ps", "--json", "--host", `127.0.0.1:${port}`], { env });
    assert.equal(ps.code, 0, ps.stderr);
    const loaded = (JSON.parse(ps.stdout) as { models: { name: string }[] }).models.map((model) => model.name);
    assert.deepEqual(loaded, ["stories:latest"]);
    const loads = server.output().match(/"msg":"model loaded"/g) ?? [];
    assert.equal(loads.length, 1, "one load for both runs");

    // --host names a server that must answer; --local loads here instead.
    const nowhere = await runCli(["run", "stories", "--host", "127.0.0.1:1", "x"], { env });
    assert.equal(nowhere.code, 1);
    assert.match(nowhere.stderr, /no freehold server answered at http:\/\/127\.0\.0\.1:1/);
    const local = await runCli(["run", "stories", "--local", "x"], { env });
    assert.equal(local.code, 1);
    assert.match(local.stderr, /The model 'stories' does not exist here/, "this home has no stories");
  });
});
