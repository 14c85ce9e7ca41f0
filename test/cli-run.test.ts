import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { runCli } from "./helpers/cli.js";
import { storiesModelMissing, storiesModelPath, temporaryDirectory } from "./helpers/paths.js";

// Issue 20 item 8: `freehold run` as an Ollama user types it, with stdin piped into the real program.

const lily = ", there was a little girl named Lily";
const rawNote = /stories(:latest)? has no chat template: running it as raw text completion/;
// Nothing listens on port 1: the run cannot find a server and loads the model itself.
const noServer = { FREEHOLD_HOST: "127.0.0.1:1" };

describe("freehold run", { skip: storiesModelMissing }, () => {
  const home = temporaryDirectory("freehold-run-");
  const env = { FREEHOLD_HOME: home.path, ...noServer };
  before(async () => {
    assert.equal((await runCli(["import", storiesModelPath, "--name", "stories"], { env })).code, 0);
  });
  after(home.dispose);

  test("a model without a chat template runs as raw completion by itself, with one note on stderr", async () => {
    const result = await runCli(["run", "stories", "--temperature", "0", "--max-tokens", "10", "Once upon a time"], {
      env,
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, `${lily}\n`, "the story, not chat-template noise");
    assert.match(result.stderr, rawNote);
    assert.equal(result.stderr.trimEnd().split("\n").length, 1, result.stderr);
    const explicit = await runCli(["run", "stories", "--raw", "--temperature", "0", "--max-tokens", "10", "Once"], {
      env,
    });
    assert.doesNotMatch(explicit.stderr, rawNote, "--raw needs no note");
  });
});

test("chat through a server: system message, history, /clear and parameters reach /api/chat", async (t) => {
  // A stand-in freehold server (it answers /api/version with a `freehold` field) that records each chat request.
  const chats: { messages: { role: string; content: string }[]; options: Record<string, unknown> }[] = [];
  const server = createServer(async (request, response) => {
    let text = "";
    for await (const chunk of request) text += chunk;
    const body = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
    response.setHeader("content-type", "application/json");
    if (request.url === "/api/version") return response.end(JSON.stringify({ version: "0.12.6", freehold: "0.1.0" }));
    if (request.url === "/api/show")
      return response.end(JSON.stringify({ template: "{{ .Prompt }}", details: { family: "llama" } }));
    if (request.url === "/api/generate") return response.end(JSON.stringify({ done: true, response: "" }));
    if (request.url === "/api/chat") {
      chats.push(body as (typeof chats)[number]);
      const reply = `answer ${chats.length}`;
      response.write(
        `${JSON.stringify({ message: { role: "assistant", content: reply.slice(0, 3) }, done: false })}\n`,
      );
      response.end(`${JSON.stringify({ message: { role: "assistant", content: reply.slice(3) }, done: true })}\n`);
      return;
    }
    response.statusCode = 404;
    response.end(JSON.stringify({ error: "not here" }));
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  t.after(() => new Promise<void>((done) => server.close(() => done())));
  const port = (server.address() as AddressInfo).port;
  const input = [
    "/set system Be brief",
    "/set parameter top_p 0.5",
    "/set parameter stop END STOP",
    "hello",
    "and again",
    "/clear",
    '"""first line',
    'second line"""',
    "/bye",
  ].join("\n");
  const result = await runCli(["run", "chatty", "--host", `http://127.0.0.1:${port}`, "--seed", "7", "-i"], {
    input: `${input}\n`,
  });
  assert.equal(result.code, 0, result.stderr);
  assert.doesNotMatch(result.stderr, /no chat template/);
  assert.match(
    result.stdout,
    /Set system message\.\nSet parameter 'top_p' to '0\.5'\nSet parameter 'stop' to 'END, STOP'\n/,
  );
  assert.match(result.stdout, /answer 1\nanswer 2\nCleared session context\nanswer 3\n/);
  assert.deepEqual(
    chats.map((chat) => chat.messages),
    [
      [
        { role: "system", content: "Be brief" },
        { role: "user", content: "hello" },
      ],
      [
        { role: "system", content: "Be brief" },
        { role: "user", content: "hello" },
        { role: "assistant", content: "answer 1" },
        { role: "user", content: "and again" },
      ],
      [
        { role: "system", content: "Be brief" },
        { role: "user", content: "first line\nsecond line" },
      ],
    ],
  );
  assert.deepEqual(chats[0]!.options, { seed: 7, top_p: 0.5, stop: ["END", "STOP"] });
});
