import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { SYNTHETIC_IMAGE_TOKENS, writeSyntheticModel } from "../src/gguf/index.js";
import { Freehold } from "../src/index.js";
import { HttpImageFetcher, parseHostRules } from "../src/providers/imageFetch.js";
import { addressProblem } from "../src/providers/publicAddress.js";
import { runCli } from "./helpers/cli.js";
import { llamaServerMissing, llamaServerPath } from "./helpers/engines.js";
import { pngBase64 } from "./helpers/images.js";
import { temporaryDirectory } from "./helpers/paths.js";
import { postJson, type ServerProcess, startServerProcess } from "./helpers/server.js";

/**
 * Image URLs through the HTTP APIs: OpenAI chat `image_url.url`, Responses `input_image.image_url` and Anthropic
 * `source.type: "url"` are fetched by the fetcher the composition root hands in (here one with the test seams, so
 * a made-up host resolves to the test server on 127.0.0.1), and a failed fetch is a 400 in each API's shape naming
 * the field. With a llama-server binary, the synthetic vision model answers a fetched image end to end.
 */

const png = Buffer.from(pngBase64(16), "base64");
let imageServer: Server;
let port: number;
let fetches = 0;

before(async () => {
  imageServer = createServer((request, response) => {
    fetches++;
    if (request.url === "/cat.png") response.writeHead(200, { "content-type": "image/png" }).end(png);
    else response.writeHead(200, { "content-type": "image/png" }).end("not an image, whatever the header says");
  });
  imageServer.listen(0, "127.0.0.1");
  await once(imageServer, "listening");
  port = (imageServer.address() as AddressInfo).port;
});
after(() => {
  imageServer.closeAllConnections();
  imageServer.close();
});

function seamedFetcher(): HttpImageFetcher {
  return new HttpImageFetcher({
    hosts: parseHostRules([`images.test:${port}`]),
    timeoutMs: 3000,
    resolve: async () => [{ address: "127.0.0.1", family: 4 }],
    addressProblem: (address) => (address === "127.0.0.1" ? undefined : addressProblem(address)),
  });
}

const models = temporaryDirectory("freehold-vision-url-");
const visionModel = join(models.path, "vision.gguf");
writeSyntheticModel(visionModel, { preset: "tiny-vision", quant: "f32", seed: 3 });
const projector = join(models.path, "vision-mmproj.gguf");
after(() => models.dispose());

// biome-ignore lint/suspicious/noExplicitAny: three API shapes' JSON, read field by field
async function post(freehold: Freehold, path: string, body: unknown): Promise<{ status: number; json: any }> {
  const response = await freehold.httpApp().request(`http://localhost${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, json: await response.json() };
}

describe("image URLs: a failed fetch is a 400 naming the field, in every API's shape", () => {
  const home = temporaryDirectory();
  let freehold: Freehold;
  before(async () => {
    freehold = await Freehold.open({ home: home.path, imageFetcher: seamedFetcher() });
  });
  after(async () => {
    await freehold?.close();
    home.dispose();
  });
  const bad = () => `http://images.test:${port}/not-an-image`;

  test("OpenAI chat image_url.url and Responses input_image.image_url", async () => {
    const chat = await post(freehold, "/v1/chat/completions", {
      model: "vision",
      messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: bad() } }] }],
    });
    assert.equal(chat.status, 400, JSON.stringify(chat.json));
    assert.equal(chat.json.error.code, "image_fetch_failed");
    assert.equal(chat.json.error.param, "messages[0].content[0].image_url.url");
    assert.doesNotMatch(chat.json.error.message, /whatever the header says/, "the body is never echoed");
    const responses = await post(freehold, "/v1/responses", {
      model: "vision",
      input: [
        {
          role: "user",
          content: [
            { type: "input_text", text: "x" },
            { type: "input_image", image_url: bad() },
          ],
        },
      ],
    });
    assert.equal(responses.status, 400);
    assert.equal(responses.json.error.code, "image_fetch_failed");
    assert.equal(responses.json.error.param, "input[0].content[1].image_url");
    const unlisted = await post(freehold, "/v1/chat/completions", {
      model: "vision",
      messages: [
        { role: "user", content: [{ type: "image_url", image_url: { url: "https://elsewhere.test/a.png" } }] },
      ],
    });
    assert.equal(unlisted.status, 400);
    assert.equal(unlisted.json.error.code, "image_url_not_allowed");
  });

  test("Anthropic url sources on /v1/messages and /v1/messages/count_tokens", async () => {
    const messages = [
      {
        role: "user",
        content: [
          { type: "image", source: { type: "url", url: bad() } },
          { type: "text", text: "x" },
        ],
      },
    ];
    for (const path of ["/v1/messages", "/v1/messages/count_tokens"]) {
      const answer = await post(freehold, path, { model: "vision", max_tokens: 3, messages });
      assert.equal(answer.status, 400, path);
      assert.equal(answer.json.type, "error");
      assert.equal(answer.json.error.type, "invalid_request_error");
      assert.match(
        answer.json.error.message,
        /messages\[0\]\.content\[0\]\.source\.url: the fetched file is not a PNG/,
      );
    }
    const notHttp = await post(freehold, "/v1/messages", {
      model: "vision",
      max_tokens: 3,
      messages: [{ role: "user", content: [{ type: "image", source: { type: "url", url: "ftp://x/a.png" } }] }],
    });
    assert.equal(notHttp.status, 400);
    assert.match(notHttp.json.error.message, /source\.url: must be an http\(s\) URL/);
  });

  test("Ollama images stay base64 only: a URL there is invalid base64, never fetched", async () => {
    const before = fetches;
    const answer = await post(freehold, "/api/chat", {
      model: "vision",
      stream: false,
      messages: [{ role: "user", content: "x", images: [`http://images.test:${port}/cat.png`] }],
    });
    assert.equal(answer.status, 400);
    assert.match(answer.json.error, /messages\[0\]\.images\[0\]: is not valid base64/);
    assert.equal(fetches, before);
  });
});

describe("a local-only key may fetch from a listed host (the image reaches only the local model)", () => {
  const home = temporaryDirectory();
  let freehold: Freehold;
  let secret = "";
  before(async () => {
    freehold = await Freehold.open({ home: home.path, imageFetcher: seamedFetcher() });
    secret = (await freehold.control.store.createKey("private", { localOnly: true }, { actor: "test" })).secret;
  });
  after(async () => {
    await freehold?.close();
    home.dispose();
  });

  test("the fetch happens for a local-only key; the request then goes on (here: to a model that is not there)", async () => {
    const before = fetches;
    const response = await freehold.httpApp().request("http://localhost/v1/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${secret}` },
      body: JSON.stringify({
        model: "vision",
        messages: [
          { role: "user", content: [{ type: "image_url", image_url: { url: `http://images.test:${port}/cat.png` } }] },
        ],
      }),
    });
    assert.equal(fetches, before + 1, "fetched once");
    assert.equal(response.status, 404, await response.text());
    const anonymous = await freehold.httpApp().request("http://localhost/v1/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "vision",
        messages: [
          { role: "user", content: [{ type: "image_url", image_url: { url: `http://images.test:${port}/cat.png` } }] },
        ],
      }),
    });
    assert.equal(anonymous.status, 401, "no key, no fetch");
    assert.equal(fetches, before + 1);
  });
});

describe("a key limited to other models makes the server fetch nothing", () => {
  const home = temporaryDirectory();
  let freehold: Freehold;
  let secret = "";
  before(async () => {
    freehold = await Freehold.open({ home: home.path, imageFetcher: seamedFetcher() });
    secret = (await freehold.control.store.createKey("scoped", { models: ["other"] }, { actor: "test" })).secret;
  });
  after(async () => {
    await freehold?.close();
    home.dispose();
  });

  test("a request for a model outside the key's scope is a 403 before any image is fetched, on every API", async () => {
    const url = `http://images.test:${port}/cat.png`;
    const requests: [string, unknown][] = [
      [
        "/v1/chat/completions",
        { model: "vision", messages: [{ role: "user", content: [{ type: "image_url", image_url: { url } }] }] },
      ],
      [
        "/v1/responses",
        { model: "vision", input: [{ role: "user", content: [{ type: "input_image", image_url: url }] }] },
      ],
      [
        "/v1/messages",
        {
          model: "vision",
          max_tokens: 8,
          messages: [{ role: "user", content: [{ type: "image", source: { type: "url", url } }] }],
        },
      ],
      [
        "/v1/messages/count_tokens",
        { model: "vision", messages: [{ role: "user", content: [{ type: "image", source: { type: "url", url } }] }] },
      ],
    ];
    const before = fetches;
    for (const [path, body] of requests) {
      const response = await freehold.httpApp().request(`http://localhost${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${secret}`, "x-api-key": secret },
        body: JSON.stringify(body),
      });
      const text = await response.text();
      assert.equal(response.status, 403, `${path}: ${text}`);
      assert.match(text, /may not use the model 'vision'/, path);
    }
    assert.equal(fetches, before, "the key may not use the model: nothing is fetched on its behalf");
  });
});

describe("freehold serve with FREEHOLD_IMAGE_FETCH: the production fetcher, wired from the setting", () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServerProcess({ env: { FREEHOLD_IMAGE_FETCH: `localhost:${port}, images.example.com` } });
  });
  after(() => server?.dispose());

  test("a listed host that is loopback is refused (no seams in production), logged by host without path or query", async () => {
    const before = fetches;
    const response = await postJson(`${server.url}/v1/chat/completions`, {
      model: "vision",
      messages: [
        {
          role: "user",
          content: [{ type: "image_url", image_url: { url: `http://localhost:${port}/cat.png?token=SECRET123` } }],
        },
      ],
    });
    const body = (await response.json()) as { error: { code: string; message: string } };
    assert.equal(response.status, 400);
    assert.equal(body.error.code, "image_url_not_allowed");
    assert.match(body.error.message, /loopback address, which is never fetched/);
    assert.equal(fetches, before, "nothing reached the image server");
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.match(server.output(), /image fetch refused or failed/, server.output());
    assert.ok(server.output().includes(`localhost:${port}`), server.output());
    assert.doesNotMatch(server.output(), /SECRET123|cat\.png/);
    const egress = await runCli(["doctor", "--egress"], {
      env: { ...process.env, FREEHOLD_HOME: server.home, FREEHOLD_IMAGE_FETCH: "images.example.com" },
    });
    assert.match(egress.stdout, /images\.example\.com {2}image URLs in requests/);
  });
});

describe("a fetched image answered on the llama-server engine", { skip: llamaServerMissing }, () => {
  const home = temporaryDirectory();
  let freehold: Freehold;
  before(async () => {
    freehold = await Freehold.open({
      home: home.path,
      engine: "llama-server",
      llamaServer: llamaServerPath ?? "",
      imageFetcher: seamedFetcher(),
    });
    await freehold.store.import(visionModel, "vision", { projector });
  });
  after(async () => {
    await freehold?.close();
    home.dispose();
  });

  test("OpenAI chat with an http image URL: the same prompt tokens as the same image inline", async () => {
    const ask = (url: string) =>
      post(freehold, "/v1/chat/completions", {
        model: "vision",
        max_tokens: 3,
        temperature: 0,
        messages: [
          {
            role: "user",
            content: [
              { type: "text", text: "what?" },
              { type: "image_url", image_url: { url } },
            ],
          },
        ],
      });
    const before = fetches;
    const fetched = await ask(`http://images.test:${port}/cat.png`);
    assert.equal(fetched.status, 200, JSON.stringify(fetched.json));
    assert.equal(fetches, before + 1);
    const inline = await ask(`data:image/png;base64,${png.toString("base64")}`);
    assert.equal(inline.status, 200);
    assert.ok(fetched.json.usage.prompt_tokens >= SYNTHETIC_IMAGE_TOKENS, JSON.stringify(fetched.json.usage));
    assert.equal(fetched.json.usage.prompt_tokens, inline.json.usage.prompt_tokens);
    assert.equal(fetched.json.choices[0].message.content, inline.json.choices[0].message.content);
  });
});
