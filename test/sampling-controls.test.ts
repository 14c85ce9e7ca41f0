import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { readGgufFile } from "../src/gguf/index.js";
import { storiesModelMissing, storiesModelPath } from "./helpers/paths.js";
import { postJson, type ServerProcess, startServerProcess } from "./helpers/server.js";

/** stories260K's vocabulary, read from its GGUF (sentencepiece: "▁" is a leading space). */
function vocabulary(): string[] {
  const entry = readGgufFile(storiesModelPath).metadata.get("tokenizer.ggml.tokens") as { value: string[] };
  return entry.value;
}

interface Completion {
  choices: { text: string; finish_reason: string }[];
}
interface Chat {
  choices: { message: { content: string }; logprobs: { content: { token: string }[] } | null }[];
}

describe("logit_bias and n on stories260K", { skip: storiesModelMissing }, () => {
  let server: ServerProcess;
  let pieces: string[];
  const idOf = (text: string) => {
    const id = pieces.indexOf(text.replace(/^ /, "▁"));
    assert.ok(id >= 0, `"${text}" is one token of the vocabulary`);
    return id;
  };
  before(async () => {
    pieces = storiesModelMissing ? [] : vocabulary();
    server = await startServerProcess({ models: { stories: storiesModelPath } });
  });
  after(async () => {
    await server?.dispose();
  });

  const prompt = { model: "stories", prompt: "Once upon a time", max_tokens: 4, temperature: 0 };
  async function complete(extra: object): Promise<string> {
    const response = await postJson(`${server.url}/v1/completions`, { ...prompt, ...extra });
    assert.equal(response.status, 200, await response.clone().text());
    return ((await response.json()) as Completion).choices[0]!.text;
  }

  test("completions: banning the token greedy decoding picks (-100) changes the answer; 0 changes nothing", async () => {
    const plain = await complete({});
    assert.match(plain, /^,/, "greedy continues with a comma");
    assert.equal(await complete({ logit_bias: { [idOf(",")]: 0 } }), plain);
    const banned = await complete({ logit_bias: { [idOf(",")]: -100 } });
    assert.notEqual(banned, plain);
    assert.doesNotMatch(banned, /,/, "the banned token never appears");
  });

  test("completions: +100 all but forces a token, at every step", async () => {
    const forced = await complete({ logit_bias: { [idOf(" happy")]: 100 } });
    // The first token reads without its leading space (detokenized without the prompt before it, as before).
    assert.match(forced, /^ ?happy happy happy happy$/);
  });

  test("chat: the same ban, on the token the chat answer starts with", async () => {
    const body = {
      model: "stories",
      messages: [{ role: "user", content: "Once upon a time" }],
      max_tokens: 4,
      temperature: 0,
      logprobs: true,
    };
    const plain = (await (await postJson(`${server.url}/v1/chat/completions`, body)).json()) as Chat;
    const first = plain.choices[0]!.logprobs!.content[0]!.token;
    const response = await postJson(`${server.url}/v1/chat/completions`, {
      ...body,
      logit_bias: { [idOf(first)]: -100 },
    });
    assert.equal(response.status, 200);
    const banned = (await response.json()) as Chat;
    assert.notEqual(banned.choices[0]!.logprobs!.content[0]!.token, first);
    assert.notEqual(banned.choices[0]!.message.content, plain.choices[0]!.message.content);
  });

  const refused: [string, object, RegExp][] = [
    ["an id past the vocabulary (512 tokens)", { logit_bias: { "512": -100 } }, /not in this model's vocabulary/],
    ["an id far past it", { logit_bias: { "4294967295": 1 } }, /not in this model's vocabulary/],
    ["a key that is not an id", { logit_bias: { hello: 1 } }, /token ids/],
    ["a negative id", { logit_bias: { "-1": 1 } }, /token ids/],
    ["a fractional id", { logit_bias: { "1.5": 1 } }, /token ids/],
    ["a value above 100", { logit_bias: { "5": 100.5 } }, /100/],
    ["a value below -100", { logit_bias: { "5": -101 } }, /-100/],
    ["a value that is not a number", { logit_bias: { "5": "ban" } }, /number/],
    ["the end-of-generation token (2, </s>)", { logit_bias: { "2": -100 } }, /ends generation.*ignore_eos/],
  ];
  for (const [name, extra, message] of refused) {
    for (const path of ["/v1/completions", "/v1/chat/completions"]) {
      test(`400 naming logit_bias: ${name} (${path})`, async () => {
        const body =
          path === "/v1/completions"
            ? { ...prompt, ...extra }
            : { model: "stories", messages: [{ role: "user", content: "hi" }], max_tokens: 2, ...extra };
        const response = await postJson(`${server.url}${path}`, body);
        assert.equal(response.status, 400);
        const json = (await response.json()) as { error: { message: string; param: string | null } };
        assert.ok(json.error.param?.startsWith("logit_bias"), `param ${json.error.param}`);
        assert.match(json.error.message, message);
      });
    }
  }

  test("n > 1 is refused with a 400 that says what to do instead", async () => {
    for (const path of ["/v1/completions", "/v1/chat/completions"]) {
      const body =
        path === "/v1/completions"
          ? { ...prompt, n: 3 }
          : { model: "stories", messages: [{ role: "user", content: "hi" }], n: 2 };
      const response = await postJson(`${server.url}${path}`, body);
      assert.equal(response.status, 400);
      const json = (await response.json()) as { error: { message: string; param: string } };
      assert.equal(json.error.param, "n");
      assert.match(json.error.message, /several choices \(n > 1\) are not supported: send one request per answer/);
    }
  });
});
