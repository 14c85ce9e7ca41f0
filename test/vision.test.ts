import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { Ollama } from "ollama";
import OpenAI from "openai";
import { SYNTHETIC_IMAGE_TOKENS, writeSyntheticModel } from "../src/gguf/index.js";
import { llamaServerMissing, llamaServerPath } from "./helpers/engines.js";
import { pngBase64, pngDataUri } from "./helpers/images.js";
import { storiesModelMissing, storiesModelPath, temporaryDirectory } from "./helpers/paths.js";
import { postJson, type ServerProcess, startServerProcess } from "./helpers/server.js";

/**
 * Images on every API. Without a llama-server binary: every bad image is a 400 naming its field, and a model that
 * cannot read images says why. With one: the synthetic vision model (freehold synth --preset tiny-vision) answers an
 * image through the OpenAI chat, Responses, Ollama and Anthropic shapes, and the image's tokens are in the usage.
 */

const models = temporaryDirectory("freehold-vision-");
const visionModel = join(models.path, "vision.gguf");
writeSyntheticModel(visionModel, { preset: "tiny-vision", quant: "f32", seed: 3 });
const projector = join(models.path, "vision-mmproj.gguf");
after(() => models.dispose());

interface ErrorBody {
  error: { code?: string; param?: string | null; message: string } | string;
  type?: string;
}

function errorOf(body: ErrorBody): { code?: string; param?: string | null; message: string } {
  return typeof body.error === "string" ? { message: body.error } : body.error;
}

describe("images: bad input and models that cannot read them (any engine)", () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServerProcess({
      models: { stories: storiesModelPath },
      env: { FREEHOLD_ENGINE: "node-llama-cpp", FREEHOLD_MAX_BODY_BYTES: String(32 << 20) },
    });
    const { runCli } = await import("./helpers/cli.js");
    const imported = await runCli(["import", visionModel, "--name", "vision", "--projector", projector], {
      env: { ...process.env, FREEHOLD_HOME: server.home },
    });
    assert.equal(imported.code, 0, imported.stderr);
  });
  after(() => server?.dispose());

  const chat = (content: unknown, role = "user") =>
    postJson(`${server.url}/v1/chat/completions`, { model: "vision", max_tokens: 3, messages: [{ role, content }] });

  test("OpenAI image_url: http(s) refused (egress), bad data, wrong bytes, non-user roles: 400s naming the field", async () => {
    const cases: { content: unknown; role?: string; code: string; param: string }[] = [
      {
        content: [{ type: "image_url", image_url: { url: "https://example.com/cat.png" } }],
        code: "image_url_not_allowed",
        param: "messages[0].content[0].image_url.url",
      },
      {
        content: [{ type: "image_url", image_url: { url: "http://10.0.0.1/x.png" } }],
        code: "image_url_not_allowed",
        param: "messages[0].content[0].image_url.url",
      },
      {
        content: [
          { type: "text", text: "x" },
          { type: "image_url", image_url: { url: "data:image/png;base64,@@@@" } },
        ],
        code: "invalid_image",
        param: "messages[0].content[1].image_url.url",
      },
      {
        content: [
          {
            type: "image_url",
            image_url: { url: `data:image/png;base64,${Buffer.from("not an image at all").toString("base64")}` },
          },
        ],
        code: "invalid_image",
        param: "messages[0].content[0].image_url.url",
      },
      {
        content: [{ type: "image_url", image_url: { url: "file:///etc/passwd" } }],
        code: "invalid_image",
        param: "messages[0].content[0].image_url.url",
      },
      {
        content: [{ type: "image_url", image_url: { url: pngDataUri() } }],
        role: "system",
        code: "invalid_request",
        param: "messages[0].content",
      },
    ];
    for (const item of cases) {
      const response = await chat(item.content, item.role);
      const body = (await response.json()) as ErrorBody;
      assert.equal(response.status, 400, JSON.stringify(body));
      const error = errorOf(body);
      assert.equal(error.code, item.code, error.message);
      assert.equal(error.param, item.param);
    }
  });

  test("too many images and too large an image are 400s that say the limit", async () => {
    const many = Array.from({ length: 17 }, () => ({ type: "image_url", image_url: { url: pngDataUri() } }));
    const tooMany = await chat(many);
    assert.equal(tooMany.status, 400);
    assert.equal(errorOf((await tooMany.json()) as ErrorBody).code, "too_many_images");
    // 9 MiB of PNG-signed bytes: over the 8 MiB image limit (the body limit is raised for this server).
    const big = Buffer.alloc(9 << 20);
    Buffer.from(pngBase64(), "base64").copy(big);
    const tooBig = await chat([
      { type: "image_url", image_url: { url: `data:image/png;base64,${big.toString("base64")}` } },
    ]);
    assert.equal(tooBig.status, 400);
    const error = errorOf((await tooBig.json()) as ErrorBody);
    assert.equal(error.code, "invalid_image");
    assert.match(error.message, /larger than 8 MiB/);
  });

  test("Responses input_image, Ollama images, Anthropic image blocks: bad input is a 400 in each API's shape", async () => {
    const responses = await postJson(`${server.url}/v1/responses`, {
      model: "vision",
      input: [{ role: "user", content: [{ type: "input_image", file_id: "file-123" }] }],
    });
    assert.equal(responses.status, 400);
    assert.match(errorOf((await responses.json()) as ErrorBody).message, /no Files API/);
    const ollama = await postJson(`${server.url}/api/chat`, {
      model: "vision",
      stream: false,
      messages: [{ role: "user", content: "x", images: ["bm90IGFuIGltYWdl"] }],
    });
    assert.equal(ollama.status, 400);
    assert.match(errorOf((await ollama.json()) as ErrorBody).message, /messages\[0\]\.images\[0\]/);
    const generate = await postJson(`${server.url}/api/generate`, {
      model: "vision",
      stream: false,
      prompt: "x",
      raw: true,
      images: [pngBase64()],
    });
    assert.equal(generate.status, 400);
    const anthropic = await postJson(`${server.url}/v1/messages`, {
      model: "vision",
      max_tokens: 3,
      messages: [
        { role: "user", content: [{ type: "image", source: { type: "url", url: "https://example.com/a.png" } }] },
      ],
    });
    assert.equal(anthropic.status, 400);
    const anthropicBody = (await anthropic.json()) as { type: string; error: { type: string; message: string } };
    assert.equal(anthropicBody.type, "error");
    assert.match(anthropicBody.error.message, /not fetched/);
  });

  test("a model with a projector on node-llama-cpp, and a model without one, say why they cannot read the image", async () => {
    const onNode = await chat([
      { type: "text", text: "what?" },
      { type: "image_url", image_url: { url: pngDataUri() } },
    ]);
    assert.equal(onNode.status, 400);
    const nodeError = errorOf((await onNode.json()) as ErrorBody);
    assert.equal(nodeError.code, "images_unsupported");
    assert.match(nodeError.message, /node-llama-cpp/);
    assert.match(nodeError.message, /FREEHOLD_LLAMA_SERVER/);
    assert.match(nodeError.message, /freehold engine build/);
    const text = await chat("just text");
    assert.equal(text.status, 200, "the same model still answers text on node-llama-cpp");
    const stories = await postJson(`${server.url}/api/chat`, {
      model: "stories",
      stream: false,
      messages: [{ role: "user", content: "x", images: [pngBase64()] }],
    });
    assert.equal(stories.status, 400);
    assert.match(errorOf((await stories.json()) as ErrorBody).message, /no vision projector.*--projector/);
  });

  test("/api/show: capabilities include vision only for the model with a projector", async () => {
    const show = async (model: string) =>
      ((await (await postJson(`${server.url}/api/show`, { model })).json()) as { capabilities: string[] }).capabilities;
    assert.ok((await show("vision")).includes("vision"));
    assert.ok(!(await show("stories")).includes("vision"));
  });
});

describe("images answered on the llama-server engine, through every API shape", { skip: llamaServerMissing }, () => {
  let server: ServerProcess;
  before(async () => {
    // auto: the model with a projector goes to llama-server, the one without stays on node-llama-cpp.
    server = await startServerProcess({
      env: { FREEHOLD_ENGINE: "auto", FREEHOLD_LLAMA_SERVER: llamaServerPath ?? "" },
    });
    const { runCli } = await import("./helpers/cli.js");
    const imported = await runCli(["import", visionModel, "--name", "vision", "--projector", projector], {
      env: { ...process.env, FREEHOLD_HOME: server.home },
    });
    assert.equal(imported.code, 0, imported.stderr);
  });
  after(() => server?.dispose());

  test("OpenAI chat: an image costs its image tokens in usage, and the answer comes back (also streamed)", async () => {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
    const withImage = await client.chat.completions.create({
      model: "vision",
      max_tokens: 4,
      temperature: 0,
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "what is in the picture?" },
            { type: "image_url", image_url: { url: pngDataUri(16) } },
          ],
        },
      ],
    });
    const textOnly = await client.chat.completions.create({
      model: "vision",
      max_tokens: 4,
      temperature: 0,
      messages: [{ role: "user", content: "what is in the picture?" }],
    });
    assert.equal(withImage.choices[0]!.message.role, "assistant");
    assert.equal(withImage.usage?.completion_tokens, 4);
    const extra = (withImage.usage?.prompt_tokens ?? 0) - (textOnly.usage?.prompt_tokens ?? 0);
    assert.ok(extra >= SYNTHETIC_IMAGE_TOKENS, `the image added ${extra} prompt tokens`);
    const stream = await client.chat.completions.create({
      model: "vision",
      max_tokens: 4,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: pngDataUri(16) } }] }],
    });
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) usage = chunk.usage ?? usage;
    assert.ok((usage?.prompt_tokens ?? 0) >= SYNTHETIC_IMAGE_TOKENS);
    const ps = (await (await fetch(`${server.url}/api/ps`)).json()) as {
      models: { details: { engine: string; vision: boolean } }[];
    };
    assert.equal(ps.models[0]?.details.engine, "llama-server");
    assert.equal(ps.models[0]?.details.vision, true);
  });

  test("Responses input_image", async () => {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
    const response = await client.responses.create({
      model: "vision",
      max_output_tokens: 16,
      temperature: 0,
      input: [
        {
          role: "user",
          content: [
            { type: "input_text", text: "describe" },
            { type: "input_image", image_url: pngDataUri(), detail: "auto" },
          ],
        },
      ],
    });
    assert.equal(response.status === "completed" || response.status === "incomplete", true);
    assert.ok((response.usage?.input_tokens ?? 0) >= SYNTHETIC_IMAGE_TOKENS);
  });

  test("Ollama images on /api/chat and /api/generate", async () => {
    const ollama = new Ollama({ host: server.url });
    const chat = await ollama.chat({
      model: "vision",
      messages: [{ role: "user", content: "describe", images: [pngBase64()] }],
      options: { num_predict: 3, temperature: 0 },
    });
    assert.equal(chat.done, true);
    assert.ok(chat.prompt_eval_count >= SYNTHETIC_IMAGE_TOKENS);
    const generate = await ollama.generate({
      model: "vision",
      prompt: "describe",
      images: [pngBase64()],
      options: { num_predict: 3, temperature: 0 },
    });
    assert.equal(generate.done, true);
    assert.ok(generate.prompt_eval_count >= SYNTHETIC_IMAGE_TOKENS);
  });

  test("Anthropic base64 image blocks, and count_tokens counts the image", async () => {
    const anthropic = new Anthropic({ baseURL: server.url, apiKey: "unused", maxRetries: 0 });
    const messages: Anthropic.MessageParam[] = [
      {
        role: "user",
        content: [
          { type: "image", source: { type: "base64", media_type: "image/png", data: pngBase64() } },
          { type: "text", text: "describe" },
        ],
      },
    ];
    // The SDK's types leave out temperature, which the API takes.
    const params = { model: "vision", max_tokens: 3, temperature: 0, messages };
    const message = await anthropic.messages.create(params as Anthropic.MessageCreateParamsNonStreaming);
    assert.equal(message.type, "message");
    // Anthropic's input_tokens leave out what was read from the prompt cache.
    const prompt = message.usage.input_tokens + (message.usage.cache_read_input_tokens ?? 0);
    assert.ok(prompt >= SYNTHETIC_IMAGE_TOKENS, `${prompt} prompt tokens`);
    const counted = await anthropic.messages.countTokens({ model: "vision", messages });
    assert.equal(counted.input_tokens, prompt);
  });

  test("the text-only model beside it stays on node-llama-cpp under auto", { skip: storiesModelMissing }, async () => {
    const { runCli } = await import("./helpers/cli.js");
    await runCli(["import", storiesModelPath, "--name", "stories"], {
      env: { ...process.env, FREEHOLD_HOME: server.home },
    });
    const answer = await postJson(`${server.url}/v1/completions`, {
      model: "stories",
      prompt: "Once upon a time",
      max_tokens: 2,
    });
    assert.equal(answer.status, 200);
    const ps = (await (await fetch(`${server.url}/api/ps`)).json()) as {
      models: { name: string; details: { engine: string } }[];
    };
    assert.equal(ps.models.find((m) => m.name.startsWith("stories"))?.details.engine, "node-llama-cpp");
  });
});
