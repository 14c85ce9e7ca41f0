import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before } from "node:test";
import type { JinjaTemplateChatWrapper } from "node-llama-cpp";
import type { ChatMessage, ToolDefinition } from "../../src/core/chat.js";
import { messagesWithTools } from "../../src/core/tools.js";
import { nativePrompt, resolveNativeTools } from "../../src/engine/runner/nativeTools.js";
import { writeSyntheticModel } from "../../src/gguf/index.js";
import { runCli } from "./cli.js";
import { projectRoot, temporaryDirectory } from "./paths.js";
import { postJson, type ServerProcess, startServerProcess } from "./server.js";

// Synthetic models (random weights) carrying real families' templates (test/fixtures/templates/README.md says where
// each comes from). Their text is noise, so these tests check what does not depend on the weights: the prompt the
// runner renders (its exact token count) and calls forced by the grammar in the family's own format.
// Split over two test files (each file has two minutes): test/native-tools*.test.ts.
const templates = join(projectRoot, "test", "fixtures", "templates");
export const templateFiles = {
  qwen: "Qwen-Qwen2.5-7B-Instruct.jinja",
  llama: "meta-llama-Llama-3.1-8B-Instruct.jinja",
  mistral: "mistralai-Mistral-Nemo-Instruct-2407.jinja",
  // node-llama-cpp cannot run this template (it uses loop.previtem): the Hermes family's wrapper renders it.
  hermes: "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja",
  // Harmony: calls name the function outside the JSON, so a forced call takes the JSON path.
  harmony: "openai-gpt-oss-120b.jinja",
  // Functionary v3.2: `>>>NAME\n{…}` segments, the name outside the JSON (a forced call takes the JSON path).
  functionary: "meetkai-functionary-medium-v3.2.jinja",
} as const;
type Family = keyof typeof templateFiles;

const weather: ToolDefinition = {
  name: "get_weather",
  description: "Current weather for a city",
  parameters: {
    type: "object",
    properties: { city: { type: "string", enum: ["Oslo", "Lima"] } },
    required: ["city"],
    additionalProperties: false,
  },
};
const openaiTool = { type: "function", function: weather };
const conversation: ChatMessage[] = [
  { role: "user", content: "Weather in Oslo?" },
  { role: "assistant", content: "", toolCalls: [{ id: "call_1", name: "get_weather", arguments: '{"city":"Oslo"}' }] },
  { role: "tool", content: '{"sky":"rain"}', toolCallId: "call_1" },
  { role: "assistant", content: "Rain." },
  { role: "user", content: "And Lima?" },
];
const openaiMessages = [
  { role: "user", content: "Weather in Oslo?" },
  {
    role: "assistant",
    content: "",
    tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Oslo"}' } }],
  },
  { role: "tool", content: '{"sky":"rain"}', tool_call_id: "call_1" },
  { role: "assistant", content: "Rain." },
  { role: "user", content: "And Lima?" },
];

/**
 * Synthetic models carrying `chosen` families' templates, served by one `freehold serve` (registered as the calling
 * file's before/after hooks), and the end-to-end checks on them; the test files name the tests. `cli`: the first
 * model is written by `freehold synth --chat-template` (as a person would), the others in-process.
 */
export function nativeToolsFixture(chosen: Family[], cli: boolean) {
  const files = temporaryDirectory();
  let server: ServerProcess;
  const paths: Record<string, string> = {};
  const families = Object.fromEntries(chosen.map((name) => [name, templateFiles[name]]));
  before(async () => {
    for (const [index, [name, file]] of Object.entries(families).entries()) {
      paths[name] = join(files.path, `${name}.gguf`);
      if (cli && index === 0) {
        const made = await runCli(["synth", "--seed", "5", "--chat-template", join(templates, file), paths[name]!]);
        assert.equal(made.code, 0, made.stderr);
      } else {
        const chatTemplate = readFileSync(join(templates, file), "utf8");
        writeSyntheticModel(paths[name]!, { preset: "tiny", quant: "f32", seed: 5, chatTemplate });
      }
    }
    server = await startServerProcess({ models: paths });
  });
  after(async () => {
    await server?.dispose();
    files.dispose();
  });
  return {
    /** `freehold synth --chat-template` refuses what it cannot read, as a usage error. */
    async synthErrors() {
      const absent = await runCli(["synth", "--chat-template", join(files.path, "absent.jinja"), "x.gguf"]);
      assert.equal(absent.code, 2);
      assert.match(absent.stderr, /--chat-template: cannot read .*absent\.jinja.*ENOENT/);
      const folder = await runCli(["synth", "--chat-template", files.path, "x.gguf"]);
      assert.equal(folder.code, 2);
      assert.match(folder.stderr, /--chat-template: cannot read .*EISDIR/);
    },
    /** The prompt the runner renders (its exact token count) is the family's own, forced or not. */
    async prompts() {
      const nlc = await import("node-llama-cpp");
      const llama = await nlc.getLlama({ gpu: false, build: "never" });
      for (const name of Object.keys(families)) {
        const model = await llama.loadModel({ modelPath: paths[name]! });
        try {
          const template = model.fileInfo.metadata.tokenizer?.chat_template as string;
          let jinja: JinjaTemplateChatWrapper | undefined;
          try {
            jinja = new nlc.JinjaTemplateChatWrapper({ template, tokenizer: model.tokenizer });
          } catch {
            assert.equal(name, "hermes", "only Hermes' template fails in node-llama-cpp's Jinja");
          }
          const native = resolveNativeTools(nlc, template, jinja);
          assert.ok(native, name);
          const expected = nativePrompt(native, conversation, [weather], true, false).contextText.tokenize(
            model.tokenizer,
          ).length;
          // What the JSON path sends: the tools described in a system message, calls as plain JSON.
          const jsonPath = (choice: "auto" | "required") =>
            (jinja ?? native.wrapper)
              .generateContextState({
                chatHistory: [
                  ...messagesWithTools(conversation, [weather], choice).map((message) =>
                    message.role === "system"
                      ? { type: "system" as const, text: message.content }
                      : message.role === "assistant"
                        ? { type: "model" as const, response: [message.content] }
                        : { type: "user" as const, text: message.content },
                  ),
                  { type: "model" as const, response: [] },
                ],
              })
              .contextText.tokenize(model.tokenizer).length;
          assert.notEqual(expected, jsonPath("auto"), `${name}: the two renderings differ`);
          const response = await postJson(`${server.url}/v1/chat/completions`, {
            model: name,
            messages: openaiMessages,
            tools: [openaiTool],
            max_tokens: 1,
          });
          const body = (await response.json()) as { usage: { prompt_tokens: number } };
          assert.equal(response.status, 200, JSON.stringify(body));
          assert.equal(body.usage.prompt_tokens, expected, `${name}: prompt tokens`);
          // A forced call: the same prompt ending with the format's opener (`<tool_call>\n`, `[TOOL_CALLS][`), or,
          // where the format cannot be constrained (Harmony), the JSON path's.
          const unconstrained = name === "harmony" || name === "functionary";
          assert.equal(native.forced === null, unconstrained, `${name}: which formats constrain a forced call`);
          const forced = native.forced
            ? nativePrompt(native, conversation, [weather], true, true).contextText.tokenize(model.tokenizer).length
            : jsonPath("required");
          const answer = await postJson(`${server.url}/v1/chat/completions`, {
            model: name,
            messages: openaiMessages,
            tools: [openaiTool],
            tool_choice: "required",
            max_tokens: 1,
          });
          const forcedBody = (await answer.json()) as { usage: { prompt_tokens: number } };
          assert.equal(forcedBody.usage.prompt_tokens, forced, `${name}: forced prompt tokens`);
        } finally {
          await model.dispose();
        }
      }
      await llama.dispose();
    },
    /** A named tool_choice is answered by one call to that tool with arguments matching its schema. */
    async forcedCalls() {
      for (const name of Object.keys(families)) {
        const response = await postJson(`${server.url}/v1/chat/completions`, {
          model: name,
          messages: [{ role: "user", content: "Weather in Lima?" }],
          tools: [openaiTool],
          tool_choice: { type: "function", function: { name: "get_weather" } },
          temperature: 0.7,
          seed: 4,
          max_tokens: 60,
        });
        const body = (await response.json()) as {
          choices: {
            finish_reason: string;
            message: { content: string | null; tool_calls?: { function: { name: string; arguments: string } }[] };
          }[];
        };
        assert.equal(response.status, 200, JSON.stringify(body));
        const choice = body.choices[0]!;
        assert.equal(choice.finish_reason, "tool_calls", JSON.stringify(choice));
        assert.equal(choice.message.tool_calls?.length, 1);
        assert.equal(choice.message.tool_calls?.[0]?.function.name, "get_weather");
        const args = JSON.parse(choice.message.tool_calls![0]!.function.arguments) as { city: string };
        assert.deepEqual(Object.keys(args), ["city"]);
        assert.ok(["Oslo", "Lima"].includes(args.city));
      }
    },
    /** Random weights with tools offered: an ordinary answer, never an error. */
    async auto() {
      for (const name of Object.keys(families)) {
        const response = await postJson(`${server.url}/v1/chat/completions`, {
          model: name,
          messages: [{ role: "user", content: "Weather in Lima?" }],
          tools: [openaiTool],
          temperature: 0,
          max_tokens: 12,
        });
        const body = (await response.json()) as { choices: { finish_reason: string }[] };
        assert.equal(response.status, 200, JSON.stringify(body));
        assert.ok(["stop", "length", "tool_calls"].includes(body.choices[0]!.finish_reason), name);
      }
    },
    /**
     * The tool format `name`'s model gets, as `/api/show` (model_info["freehold.tool_format"]) and `freehold show`
     * (text and JSON) report it: all three agree, and it is read without loading the model.
     */
    async toolFormat(name: string): Promise<string> {
      const response = await postJson(`${server.url}/api/show`, { model: name });
      assert.equal(response.status, 200);
      const shown = ((await response.json()) as { model_info: Record<string, unknown> }).model_info;
      const format = shown["freehold.tool_format"];
      assert.equal(typeof format, "string");
      const env = { FREEHOLD_HOME: server.home };
      const text = await runCli(["show", name], { env });
      assert.equal(text.code, 0, text.stderr);
      const line = text.stdout.split("\n").find((row) => row.trim().startsWith("tool format"));
      assert.equal(line?.trim().replace(/^tool format\s+/, ""), format);
      const json = await runCli(["show", name, "--format", "json"], { env });
      assert.equal((JSON.parse(json.stdout) as { toolFormat: string }).toolFormat, format);
      return format as string;
    },
    /** A plain chat (no tools) with `name`'s model answers. */
    async chats(name: string) {
      const response = await postJson(`${server.url}/v1/chat/completions`, {
        model: name,
        messages: [{ role: "user", content: "Hello" }],
        max_tokens: 3,
      });
      assert.equal(response.status, 200, await response.clone().text());
    },
  };
}
