import assert from "node:assert/strict";
import { availableParallelism } from "node:os";
import { after, before, describe, test } from "node:test";
import type { Hono } from "hono";
import { ControlPlane } from "../src/control/controlPlane.js";
import type { ModelCatalog, ModelControl } from "../src/core/catalog.js";
import type { ChatEvent, GenerateRequest } from "../src/core/chat.js";
import type { Gateway } from "../src/gateway/gateway.js";
import type { AppEnv } from "../src/http/appEnv.js";
import { temporaryDirectory } from "./helpers/paths.js";
import { buildApp, recorder } from "./helpers/stubApp.js";

/**
 * Issue 13 item 9: Ollama's loading options (num_ctx, num_thread, num_gpu, keep_alive) reshape a model every caller
 * shares. A non-admin key's are ignored; anyone else's are clamped to the server's limits; the answer says which.
 */
describe("loading options that reshape a shared model", () => {
  const home = temporaryDirectory();
  let control: ControlPlane;
  let keyed: Hono<AppEnv>;
  const secrets = { plain: "", admin: "" };
  const seen: GenerateRequest[] = [];
  const unloaded: string[] = [];
  const loaded: [string, number | undefined][] = [];
  const cpus = availableParallelism();

  const gateway = {
    generate(request: GenerateRequest): AsyncIterable<ChatEvent> {
      seen.push(request);
      return (async function* () {
        yield { type: "text-delta", text: "hi" } as ChatEvent;
        yield { type: "finish", reason: "stop" } as ChatEvent;
      })();
    },
  } as unknown as Gateway;
  const catalog = recorder<ModelCatalog>("catalog", () => Promise.resolve({ contextLength: 2048 }));
  const models = {
    load: async (name: string, keepAliveMs?: number) => {
      loaded.push([name, keepAliveMs]);
    },
    unload: async (name: string) => {
      unloaded.push(name);
      return true;
    },
  } as ModelControl;

  before(async () => {
    control = new ControlPlane({ home: home.path, logLevel: "silent" });
    secrets.plain = (await control.admin.createKey("plain", {}, "test")).secret;
    secrets.admin = (await control.admin.createKey("boss", { admin: true }, "test")).secret;
    keyed = buildApp(control, { gateway, catalog, models });
  });
  after(() => {
    control.close();
    home.dispose();
  });

  async function generate(app: Hono<AppEnv>, secret: string | undefined, body: Record<string, unknown>) {
    const response = await app.request("http://127.0.0.1/api/generate", {
      method: "POST",
      headers: {
        host: "127.0.0.1",
        "content-type": "application/json",
        ...(secret ? { authorization: `Bearer ${secret}` } : {}),
      },
      body: JSON.stringify({ model: "stories", prompt: "Once", stream: false, ...body }),
    });
    const text = await response.text();
    return { status: response.status, text, note: response.headers.get("x-freehold-load-options") };
  }

  const greedy = { num_ctx: 1_000_000, num_thread: 1024, num_gpu: 99 };

  test("a non-admin key's num_ctx, num_thread, num_gpu and keep_alive are ignored, and the answer says so", async () => {
    for (const path of ["/api/generate", "/api/chat"]) {
      seen.length = 0;
      const response = await keyed.request(`http://127.0.0.1${path}`, {
        method: "POST",
        headers: { host: "127.0.0.1", "content-type": "application/json", authorization: `Bearer ${secrets.plain}` },
        body: JSON.stringify({
          model: "stories",
          prompt: "Once",
          messages: [{ role: "user", content: "Once" }],
          options: greedy,
          keep_alive: -1,
        }),
      });
      assert.equal(response.status, 200, path);
      await response.text();
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.load, undefined, `${path}: no load settings reach the engine`);
      assert.equal(seen[0]!.keepAliveMs, undefined, `${path}: keep_alive does not reach the engine`);
      assert.equal(
        response.headers.get("x-freehold-load-options"),
        "ignored num_ctx, num_thread, num_gpu, keep_alive: changing how a shared model is loaded needs an admin key",
        path,
      );
    }
  });

  test("each loading option alone is ignored for a non-admin key (streamed answers say so too)", async () => {
    for (const [name, value] of Object.entries({ num_ctx: 512, num_thread: 1, num_gpu: 0 })) {
      seen.length = 0;
      const result = await generate(keyed, secrets.plain, { options: { [name]: value }, stream: true });
      assert.equal(result.status, 200);
      assert.equal(seen[0]!.load, undefined, name);
      assert.match(result.note ?? "", new RegExp(`ignored ${name}:`));
    }
  });

  test("an admin key's options apply, clamped to the machine's CPUs and the model's trained context", async () => {
    seen.length = 0;
    const result = await generate(keyed, secrets.admin, { options: greedy });
    assert.equal(result.status, 200);
    assert.deepEqual(seen[0]!.load, { contextSize: 2048, threads: cpus, gpuLayers: 99 });
    assert.equal(
      result.note,
      `num_thread 1024 clamped to ${cpus} (this machine's CPUs); num_ctx 1000000 clamped to 2048 (the context stories was trained on)`,
    );
    seen.length = 0;
    const within = await generate(keyed, secrets.admin, { options: { num_ctx: 1024, num_thread: 1 } });
    assert.deepEqual(seen[0]!.load, { contextSize: 1024, threads: 1 });
    assert.equal(within.note, null, "nothing clamped, nothing said");
  });

  test("on a keyless loopback server the owner's options apply, clamped the same way", async () => {
    // A fresh control plane with no keys: keys exist in the one above.
    const open = temporaryDirectory();
    const openControl = new ControlPlane({ home: open.path, logLevel: "silent" });
    try {
      const app = buildApp(openControl, { gateway, catalog, models });
      seen.length = 0;
      const result = await generate(app, undefined, { options: { num_thread: 1024 }, keep_alive: "10m" });
      assert.equal(result.status, 200);
      assert.deepEqual(seen[0]!.load, { threads: cpus });
      assert.equal(seen[0]!.keepAliveMs, 600_000);
      assert.match(result.note ?? "", /num_thread 1024 clamped/);
    } finally {
      openControl.close();
      open.dispose();
    }
  });

  test("keep_alive 0 on an empty prompt unloads only for an admin key; a plain key's load keeps the server's keep-alive", async () => {
    unloaded.length = 0;
    loaded.length = 0;
    const refused = await generate(keyed, secrets.plain, { prompt: "", keep_alive: 0 });
    assert.equal(refused.status, 403);
    assert.match(refused.text, /needs an admin key/);
    assert.deepEqual(unloaded, []);
    const pinned = await generate(keyed, secrets.plain, { prompt: "", keep_alive: -1 });
    assert.equal(pinned.status, 200);
    assert.deepEqual(loaded, [["stories", undefined]]);
    const done = await generate(keyed, secrets.admin, { prompt: "", keep_alive: 0 });
    assert.equal(done.status, 200);
    assert.deepEqual(unloaded, ["stories"]);
  });
});
