import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { runCli } from "./helpers/cli.js";
import { storiesModelMissing, storiesModelPath, temporaryDirectory } from "./helpers/paths.js";

// Issue 20 item 8: `freehold run`'s chat commands, with stdin piped into the real program (a file of its own: each
// file has two minutes, and a busy machine needs most of them for a few runs).

const lily = ", there was a little girl named Lily";
// Nothing listens on port 1: the run cannot find a server and loads the model itself.
const noServer = { FREEHOLD_HOST: "127.0.0.1:1" };

describe("freehold run: chat commands", { skip: storiesModelMissing }, () => {
  const home = temporaryDirectory("freehold-run-chat-");
  const env = { FREEHOLD_HOME: home.path, ...noServer };
  before(async () => {
    assert.equal((await runCli(["import", storiesModelPath, "--name", "stories"], { env })).code, 0);
  });
  after(home.dispose);

  test("chat commands and multi-line input, piped into an in-process session", async () => {
    const input = [
      "/set parameter temperature 0",
      "/set parameter num_predict 10",
      "/set parameter top_k many",
      "/set parameter warmth 3",
      "/show parameters",
      "Once upon a time",
      '"""Tom went',
      'to the park"""',
      "/set system You tell stories",
      "/show system",
      "/show info",
      "/clear",
      "/nope",
      "/?",
      "/bye",
      "Once upon a time",
    ].join("\n");
    const result = await runCli(["run", "stories", "--interactive"], { env, input: `${input}\n` });
    assert.equal(result.code, 0, result.stderr);
    const out = result.stdout;
    assert.match(out, /^Set parameter 'temperature' to '0'\nSet parameter 'num_predict' to '10'\n/);
    assert.match(out, /Couldn't set parameter: 'top_k' must be a whole number, not 'many'\n/);
    assert.match(out, /Unknown parameter 'warmth'; one of temperature, top_p, top_k, min_p, seed, num_predict/);
    assert.match(out, /Session parameters:\n {2}temperature +0\n {2}num_predict +10\n/);
    // The one-line prompt and the two-line one are both answered, with the set parameters.
    assert.match(out, new RegExp(`num_predict +10\\n${lily}\\n(.+)\\nSet system message`));
    assert.match(out, /Set system message \(not used: raw completion has no system role\)\.\nYou tell stories\n/);
    assert.match(out, / {4}mode +raw completion \(no chat template\)\n {4}answered by +this process/);
    assert.match(out, /Cleared session context\nUnknown command '\/nope'\. Type \/\? for help\nAvailable Commands:/);
    assert.match(out, /Use """ to begin a multi-line message/);
    assert.equal(out.split(lily).length - 1, 1, "nothing after /bye was answered");
    assert.doesNotMatch(out, />>> /, "no prompt characters when stdin is not a terminal");

    // The multi-line message is one prompt: it answers as the same text given at once, not as its first line.
    const atOnce = await runCli(["run", "stories", "--temperature", "0", "--max-tokens", "10"], {
      env,
      input: "Tom went\nto the park",
    });
    const firstLine = await runCli(["run", "stories", "--temperature", "0", "--max-tokens", "10", "Tom went"], { env });
    assert.notEqual(firstLine.stdout, atOnce.stdout);
    const twoLine = /num_predict +10\n.+\n(.+)\nSet system message/.exec(out)![1];
    assert.equal(`${twoLine}\n`, atOnce.stdout);
  });
});
