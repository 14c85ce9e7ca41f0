import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { writeSyntheticModel } from "../src/gguf/index.js";
import { runCli } from "./helpers/cli.js";
import { storiesModelMissing, storiesModelPath, temporaryDirectory } from "./helpers/paths.js";
import { postJson, type ServerProcess, startServerProcess } from "./helpers/server.js";

interface PsModel {
  name: string;
  size: number;
  details: { kv_cache_type: string; flash_attention: string };
}

/** Issue 14 item 6: the KV cache's type and flash attention, per server and per model (profile). */
describe("KV cache types and flash attention", { skip: storiesModelMissing }, () => {
  const directory = temporaryDirectory("freehold-kv-");
  let server: ServerProcess;
  before(async () => {
    // 64-wide heads: llama.cpp quantizes a KV cache only in whole 32-element blocks per head.
    const wide = join(directory.path, "tiny64.gguf");
    writeSyntheticModel(wide, { preset: "tiny64", quant: "q8_0", seed: 5 });
    server = await startServerProcess({
      models: { stories: storiesModelPath, wide },
      env: { FREEHOLD_KV_CACHE_TYPE: "q8_0" },
    });
  });
  after(async () => {
    await server?.dispose();
    directory.dispose();
  });

  const generate = async (model: string) => {
    const response = await postJson(`${server.url}/api/generate`, {
      model,
      prompt: "Once upon a time",
      raw: true,
      stream: false,
      options: { temperature: 0, num_predict: 10 },
    });
    const body = (await response.json()) as { response?: string; eval_count?: number; error?: string };
    assert.equal(response.status, 200, JSON.stringify(body));
    return body;
  };
  const loaded = async (name: string): Promise<PsModel> => {
    const ps = (await (await fetch(`${server.url}/api/ps`)).json()) as { models: PsModel[] };
    const model = ps.models.find((m) => m.name.startsWith(name));
    assert.ok(model, `${name} is loaded: ${JSON.stringify(ps)}`);
    return model;
  };

  test("a q8_0 KV cache (FREEHOLD_KV_CACHE_TYPE) loads and generates and /api/ps says so", async () => {
    const answer = await generate("wide");
    assert.equal(answer.eval_count, 10);
    const model = await loaded("wide");
    assert.equal(model.details.kv_cache_type, "q8_0");
    assert.equal(model.details.flash_attention, "auto");
  });

  test("stories260K's 8-wide heads cannot hold a q8_0 cache: it loads with f16 (as Ollama falls back) and says so", async () => {
    const answer = await generate("stories");
    assert.equal(answer.response, ", there was a little girl named Lily");
    assert.equal((await loaded("stories")).details.kv_cache_type, "f16");
    assert.match(server.output(), /KV cache f16 instead of q8_0: its attention heads are 8 wide/);
  });

  test("a profile's kv_cache_type and flash_attention win over the server's, for that model only", async () => {
    const profile = join(server.home, "small-cache.yaml");
    writeFileSync(profile, "from: wide\nkv_cache_type: q4_0\nflash_attention: on\n");
    const created = await runCli(["create", "small-cache", "-f", profile], { env: { FREEHOLD_HOME: server.home } });
    assert.equal(created.code, 0, created.stderr);
    const answer = await generate("small-cache");
    assert.equal(answer.eval_count, 10);
    const model = await loaded("small-cache");
    assert.equal(model.details.kv_cache_type, "q4_0");
    assert.equal(model.details.flash_attention, "on");
    assert.equal((await loaded("wide")).details.kv_cache_type, "q8_0");
    // The same weights with a q4_0 cache: the memory estimate (ps's size) follows the type.
    assert.ok(model.size < (await loaded("wide")).size, "q4_0 is estimated smaller than q8_0");
  });
});
