import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import Database from "better-sqlite3";
import { writeSyntheticModel } from "../src/gguf/index.js";
import { runCli } from "./helpers/cli.js";
import { engines } from "./helpers/engines.js";
import { storiesModelMissing, storiesModelPath, temporaryDirectory } from "./helpers/paths.js";
import { postJson, type ServerProcess, startServerProcess } from "./helpers/server.js";

interface RerankBody {
  object: string;
  model: string;
  results: { index: number; relevance_score: number; document?: { text: string } }[];
  usage: { prompt_tokens: number; total_tokens: number };
  error?: { message: string; code: string; param: string | null };
}

const documents = ["hi", "a bear", "The giant panda is a bear species endemic to China.", "tea"];

/**
 * Issue 14 item 8: POST /v1/rerank (and llama-server's /rerank) through node-llama-cpp's ranking context, on
 * `freehold synth --preset rerank-tiny` (a Qwen3-shaped cross-encoder with a random `cls.output` head: its scores
 * are noise, but real llama.cpp scores from a real ranking graph, deterministic for the same input).
 */
for (const engine of engines)
  describe(`reranking on ${engine.name}`, { skip: storiesModelMissing || engine.skip }, () => {
    const directory = temporaryDirectory("freehold-rerank-");
    let server: ServerProcess;
    let key = "";
    const rerank = (body: Record<string, unknown>, path = "/v1/rerank") =>
      postJson(`${server.url}${path}`, body, { headers: { authorization: `Bearer ${key}` } });
    const ranked = async (body: Record<string, unknown>, path?: string) => {
      const response = await rerank(body, path);
      const json = (await response.json()) as RerankBody;
      assert.equal(response.status, 200, JSON.stringify(json));
      return { json, requestId: response.headers.get("x-request-id") };
    };
    before(async () => {
      const ranker = join(directory.path, "rerank-tiny.gguf");
      writeSyntheticModel(ranker, { preset: "rerank-tiny", quant: "q8_0", seed: 1 });
      server = await startServerProcess({ models: { stories: storiesModelPath, ranker }, env: engine.env });
      const created = await runCli(["keys", "create", "--name", "searcher"], { env: { FREEHOLD_HOME: server.home } });
      assert.equal(created.code, 0, created.stderr);
      key = created.stdout.trim();
    });
    after(async () => {
      await server?.dispose();
      directory.dispose();
    });

    test("results come sorted by relevance_score with index, document and usage, the same for the same input", async () => {
      const { json } = await ranked({ model: "ranker", query: "what is a panda?", documents });
      assert.equal(json.object, "list");
      assert.equal(json.model, "ranker");
      assert.deepEqual(json.results.map((result) => result.index).sort(), [0, 1, 2, 3], "every document once");
      for (const [position, result] of json.results.entries()) {
        assert.ok(result.relevance_score >= 0 && result.relevance_score <= 1, `score ${result.relevance_score}`);
        assert.equal(result.document?.text, documents[result.index]);
        if (position > 0) assert.ok(json.results[position - 1]!.relevance_score >= result.relevance_score, "sorted");
      }
      assert.ok(
        new Set(json.results.map((result) => result.relevance_score)).size > 1,
        "the ranking head scores documents differently",
      );
      assert.ok(json.usage.prompt_tokens > 0 && json.usage.total_tokens === json.usage.prompt_tokens);
      const again = await ranked({ model: "ranker", query: "what is a panda?", documents });
      assert.deepEqual(again.json.results, json.results);
    });

    test("top_n, return_documents: false, documents as {text}, and /rerank all answer the same ranking", async () => {
      const full = (await ranked({ model: "ranker", query: "what is a panda?", documents })).json.results;
      const top = await ranked({ model: "ranker", query: "what is a panda?", documents, top_n: 2 });
      assert.deepEqual(top.json.results, full.slice(0, 2));
      const bare = await ranked({ model: "ranker", query: "what is a panda?", documents, return_documents: false });
      assert.deepEqual(
        bare.json.results,
        full.map(({ index, relevance_score }) => ({ index, relevance_score })),
      );
      const objects = await ranked({
        model: "ranker",
        query: "what is a panda?",
        documents: documents.map((text) => ({ text })),
      });
      assert.deepEqual(objects.json.results, full);
      const alias = await ranked({ model: "ranker", query: "what is a panda?", documents }, "/rerank");
      assert.deepEqual(alias.json.results, full);
    });

    test("a model without a ranking head is a 400 that says what reranking needs", async () => {
      const response = await rerank({ model: "stories", query: "q", documents: ["d"] });
      const body = (await response.json()) as RerankBody;
      assert.equal(response.status, 400);
      assert.equal(body.error?.code, "model_cannot_rank");
      assert.equal(body.error?.param, "model");
      assert.match(body.error?.message ?? "", /cannot rank documents.*ranking head/);
    });

    test("bad requests are 400s that name the field", async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ query: "q", documents: ["d"] }, "model"],
        [{ model: "ranker", documents: ["d"] }, "query"],
        [{ model: "ranker", query: "", documents: ["d"] }, "query"],
        [{ model: "ranker", query: "q" }, "documents"],
        [{ model: "ranker", query: "q", documents: [] }, "documents"],
        [{ model: "ranker", query: "q", documents: "d" }, "documents"],
        [{ model: "ranker", query: "q", documents: ["d", 7] }, "documents[1]"],
        [{ model: "ranker", query: "q", documents: ["d", { title: "no text" }] }, "documents[1].text"],
        [{ model: "ranker", query: "q", documents: ["d", ""] }, "documents[1]"],
        [{ model: "ranker", query: "q", documents: ["d"], top_n: 0 }, "top_n"],
        [{ model: "ranker", query: "q", documents: ["d"], top_n: 1.5 }, "top_n"],
        [{ model: "ranker", query: "q", documents: ["d"], return_documents: "yes" }, "return_documents"],
      ];
      for (const [body, field] of cases) {
        const response = await rerank(body);
        const answer = (await response.json()) as RerankBody;
        assert.equal(response.status, 400, `${JSON.stringify(body)} → ${JSON.stringify(answer)}`);
        assert.equal(answer.error?.param, field, `${JSON.stringify(body)} → ${JSON.stringify(answer)}`);
      }
      const unknown = await rerank({ model: "no-such-model", query: "q", documents: ["d"] });
      assert.equal(unknown.status, 404);
    });

    test("keyed and metered like embeddings: no key is 401, and each rerank is a ledger row of kind rerank", async () => {
      const anonymous = await postJson(`${server.url}/v1/rerank`, { model: "ranker", query: "q", documents: ["d"] });
      assert.equal(anonymous.status, 401);
      const { json, requestId } = await ranked({ model: "ranker", query: "what is a panda?", documents });
      assert.ok(requestId);
      const db = new Database(join(server.home, "freehold.db"), { readonly: true });
      try {
        let row:
          | { kind: string; status: number; prompt_tokens: number; key_name: string; provider: string }
          | undefined;
        for (let i = 0; i < 50 && !row; i++) {
          row = db
            .prepare("SELECT kind, status, prompt_tokens, key_name, provider FROM ledger WHERE request_id = ?")
            .get(requestId) as typeof row;
          if (!row) await new Promise((resolve) => setTimeout(resolve, 100));
        }
        assert.deepEqual(row, {
          kind: "rerank",
          status: 200,
          prompt_tokens: json.usage.prompt_tokens,
          key_name: "searcher",
          provider: "local",
        });
      } finally {
        db.close();
      }
    });
  });
