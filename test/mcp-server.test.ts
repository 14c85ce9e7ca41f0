import assert from "node:assert/strict";
import { resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { ControlPlane } from "../src/control/controlPlane.js";
import { ModelStore } from "../src/store/store.js";
import { runCli } from "./helpers/cli.js";
import { projectRoot, storiesModelMissing, storiesModelPath, temporaryDirectory } from "./helpers/paths.js";

/** `freehold mcp` spawned as an MCP client (a desktop assistant, an agent) would start it. */
async function connect(env: Record<string, string>): Promise<{ client: Client; stderr: () => string }> {
  const tsx = pathToFileURL(resolve(projectRoot, "node_modules/tsx/dist/loader.mjs")).href;
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: ["--import", tsx, resolve(projectRoot, "src/cli/entry.ts"), "mcp"],
    env: { PATH: process.env.PATH ?? "", ...env },
    cwd: projectRoot,
    stderr: "pipe",
  });
  let stderr = "";
  transport.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  });
  const client = new Client({ name: "test-agent", version: "1.0.0" });
  await client.connect(transport, { timeout: 60_000 });
  return { client, stderr: () => stderr };
}

const text = (result: unknown) => ((result as CallToolResult).content[0] as { text: string }).text;

describe("freehold mcp: local models offered to MCP clients over stdio", { skip: storiesModelMissing }, () => {
  const home = temporaryDirectory();
  const secrets: Record<string, string> = {};
  let agent: { client: Client; stderr: () => string };
  before(async () => {
    await new ModelStore({ home: home.path }).import(storiesModelPath, "stories");
    const control = new ControlPlane({ home: home.path, logLevel: "silent" });
    secrets.agent = control.keys.create("agent").secret;
    secrets.scoped = control.keys.create("scoped", { models: ["other"] }).secret;
    control.close();
    agent = await connect({ FREEHOLD_HOME: home.path, FREEHOLD_API_KEY: secrets.agent! });
  });
  after(async () => {
    await agent?.client.close();
    home.dispose();
  });

  test("it offers ask, embed and list_models", async () => {
    const { tools } = await agent.client.listTools();
    assert.deepEqual(tools.map((tool) => tool.name).sort(), ["ask", "embed", "list_models"]);
    assert.match(agent.stderr(), /serving local models over stdio as key agent/);
    const listed = await agent.client.callTool({ name: "list_models", arguments: {} });
    assert.ok(
      (listed.structuredContent as { models: { name: string }[] }).models.some((model) =>
        model.name.startsWith("stories"),
      ),
    );
  });

  test("ask answers with the local model, and the call is in the ledger under the key", async () => {
    const result = (await agent.client.callTool({
      name: "ask",
      arguments: { model: "stories", prompt: "Once upon a time", max_tokens: 10, temperature: 0 },
    })) as CallToolResult;
    assert.equal(result.isError, undefined);
    const structured = result.structuredContent as { text: string; completion_tokens: number; finish_reason: string };
    assert.equal(structured.text, text(result));
    assert.ok(structured.text.length > 0);
    assert.ok(structured.completion_tokens > 0 && structured.completion_tokens <= 10);
    const control = new ControlPlane({ home: home.path, logLevel: "silent" });
    try {
      const rows = control.ledger.rows({ limit: 100 }).filter((row) => row.api === "mcp");
      assert.ok(rows.some((row) => row.keyName === "agent" && row.route === "mcp:ask" && row.status === 200));
    } finally {
      control.close();
    }
  });

  test("embed returns one normalised vector per text", async () => {
    const result = await agent.client.callTool({
      name: "embed",
      arguments: { model: "stories", input: ["a girl", "a dog"] },
    });
    const { vectors } = result.structuredContent as { vectors: number[][] };
    assert.equal(vectors.length, 2);
    const norm = Math.hypot(...vectors[0]!);
    assert.ok(Math.abs(norm - 1) < 1e-3, `norm ${norm}`);
  });

  test("bad input and refusals come back as tool errors that say what to do", async () => {
    const missing = (await agent.client.callTool({
      name: "ask",
      arguments: { model: "nope", prompt: "hi" },
    })) as CallToolResult;
    assert.equal(missing.isError, true);
    assert.match(text(missing), /The model 'nope' does not exist here.*model_not_found/s);
    const invalid = (await agent.client.callTool({ name: "ask", arguments: { model: "stories" } })) as CallToolResult;
    assert.equal(invalid.isError, true);
    assert.match(text(invalid), /prompt/);
    const scoped = await connect({ FREEHOLD_HOME: home.path, FREEHOLD_API_KEY: secrets.scoped! });
    try {
      const refused = (await scoped.client.callTool({
        name: "ask",
        arguments: { model: "stories", prompt: "hi" },
      })) as CallToolResult;
      assert.equal(refused.isError, true);
      assert.match(text(refused), /may not use the model 'stories'.*model_not_allowed/s);
      const listed = await scoped.client.callTool({ name: "list_models", arguments: {} });
      assert.deepEqual((listed.structuredContent as { models: unknown[] }).models, []);
    } finally {
      await scoped.client.close();
    }
  });

  test("without a key, once keys exist, it refuses to start and says which variable to set", async () => {
    const missing = await runCli(["mcp"], { env: { FREEHOLD_HOME: home.path, FREEHOLD_API_KEY: "" } });
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /freehold mcp needs an API key once keys exist: set FREEHOLD_API_KEY/);
    assert.equal(missing.stdout, "", "nothing but the protocol on stdout");
    const wrong = await runCli(["mcp"], { env: { FREEHOLD_HOME: home.path, FREEHOLD_API_KEY: "fh-wrong" } });
    assert.notEqual(wrong.code, 0);
    assert.doesNotMatch(wrong.stderr, /fh-wrong/, "the presented secret is never repeated");
  });
});
