import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { lines, MAX_EVENT_BYTES, MAX_LINE_BYTES, serverSentEvents, Upstream, UpstreamError } from "./upstream.js";

async function* chunks(...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const part of parts) yield Buffer.from(part);
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

const tooLarge = (error: unknown) => error instanceof UpstreamError && error.code === "upstream_too_large";

describe("reading upstream answers: idle timeout and caps", () => {
  let server: Server;
  let base = "";
  before(async () => {
    server = createServer((request, response) => {
      response.writeHead(200, { "content-type": "text/plain" });
      if (request.url === "/stall") {
        response.write("one\n");
        return; // never ends
      }
      // Three chunks, at once: a slow reader must not be mistaken for a silent upstream.
      response.write("a\n");
      response.write("b\n");
      response.end("c\n");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  test("a body that goes silent past the idle timeout ends with a retryable 504", async () => {
    const upstream = new Upstream({ name: "slowpoke", baseUrl: base, headers: {}, idleTimeoutMs: 200 });
    const response = await upstream.request("GET", "stall", undefined);
    const started = Date.now();
    await assert.rejects(collect(lines(response.body, "slowpoke")), (error: unknown) => {
      assert.ok(error instanceof UpstreamError);
      assert.equal(error.code, "upstream_idle_timeout");
      assert.equal(error.status, 504);
      assert.equal(error.retryable, true);
      assert.match(error.message, /slowpoke/);
      return true;
    });
    assert.ok(Date.now() - started < 5000);
  });

  test("a slow reader is not a silent upstream: the clock stops while a chunk waits to be read", async () => {
    const upstream = new Upstream({ name: "fast", baseUrl: base, headers: {}, idleTimeoutMs: 100 });
    const response = await upstream.request("GET", "quick", undefined);
    const read: string[] = [];
    for await (const line of lines(response.body)) {
      read.push(line);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    assert.deepEqual(read.join(""), "abc");
  });

  test("a line past MAX_LINE_BYTES and an event past MAX_EVENT_BYTES are refused, whole or in pieces", async () => {
    const long = "x".repeat(MAX_LINE_BYTES + 1);
    await assert.rejects(collect(lines(chunks(long))), tooLarge);
    await assert.rejects(collect(lines(chunks(long.slice(0, 1000), long.slice(1000)))), tooLarge);
    // Many short lines in one chunk, and a line split across chunks, are read as before.
    assert.deepEqual(await collect(lines(chunks("a\nb\r\nc", "d\n", "e"))), ["a", "b", "cd", "e"]);
    const line = `data: ${"y".repeat(MAX_LINE_BYTES - 100)}\n`;
    const event = Array.from({ length: Math.ceil(MAX_EVENT_BYTES / MAX_LINE_BYTES) + 1 }, () => line).join("");
    await assert.rejects(collect(serverSentEvents(chunks(event, "\n"))), tooLarge);
    assert.deepEqual(await collect(serverSentEvents(chunks("event: ping\ndata: 1\ndata: 2\n\n"))), [
      { event: "ping", data: "1\n2" },
    ]);
  });
});
