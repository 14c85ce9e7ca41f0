import { writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { z } from "zod";
import { projectRoot } from "./paths.js";

/**
 * A real MCP server over stdio, written with the official SDK, for the tests: `echo` (a fruit, so a tiny model's
 * forced call is short), `whoami` (its pid), `crash` (exits), `slow` (sleeps), `big` (a long result), `add_tool`
 * (registers `late`, which sends notifications/tools/list_changed). Returns the script's path.
 */
export function writeStdioMcpServer(directory: string): string {
  const sdk = (path: string) =>
    JSON.stringify(join(projectRoot, "node_modules/@modelcontextprotocol/sdk/dist/esm", path));
  const script = join(directory, "mcp-stdio-server.mjs");
  writeFileSync(
    script,
    `import { McpServer } from ${sdk("server/mcp.js")};
import { StdioServerTransport } from ${sdk("server/stdio.js")};
import { z } from ${JSON.stringify(join(projectRoot, "node_modules/zod/index.js"))};
const server = new McpServer({ name: "test-stdio", version: "1.0.0" });
const text = (value) => ({ content: [{ type: "text", text: String(value) }] });
server.registerTool("echo", {
  description: "Says the fruit back",
  inputSchema: { fruit: z.enum(["apple", "pear"]) },
  annotations: { readOnlyHint: true },
}, async ({ fruit }) => text("echo: " + fruit + " from " + process.pid));
server.registerTool("whoami", { description: "The server's process id" }, async () => text(process.pid));
server.registerTool("crash", { description: "Exits at once" }, async () => { process.exit(3); });
server.registerTool("slow", { description: "Takes 3 seconds" }, async () => {
  await new Promise((resolve) => setTimeout(resolve, 3000));
  return text("slow done");
});
server.registerTool("big", { description: "A long result" }, async () => text("é".repeat(1000)));
server.registerTool("fails", { description: "Reports an error" }, async () => ({ isError: true, content: [{ type: "text", text: "no such fruit" }] }));
server.registerTool("contact", { description: "Looks up a contact" }, async () => text("Write to alice.smith@example.com"));
server.registerTool("add_tool", { description: "Adds the tool late" }, async () => {
  server.registerTool("late", { description: "Added later" }, async () => text("late"));
  return text("added");
});
process.stderr.write("test-stdio server up\\n");
await server.connect(new StdioServerTransport());
`,
  );
  return script;
}

export interface HttpMcpServer {
  url: string;
  /** HTTP requests it received (MCP messages). */
  requests: number;
  /** Tool calls it ran, with their arguments. */
  calls: { tool: string; args: unknown }[];
  /** Each HTTP request's headers (a client-chosen server gets the client's own). */
  headers: Record<string, string | string[] | undefined>[];
  close(): Promise<void>;
}

/** A real Streamable HTTP MCP server on loopback (stateless: a fresh server per request, as the SDK shows). */
export async function startHttpMcpServer(): Promise<HttpMcpServer> {
  const state: HttpMcpServer = { url: "", requests: 0, calls: [], headers: [], close: async () => {} };
  const build = () => {
    const server = new McpServer({ name: "test-http", version: "1.0.0" });
    server.registerTool(
      "lookup",
      { description: "Looks a word up", inputSchema: { word: z.string() } },
      async ({ word }) => {
        state.calls.push({ tool: "lookup", args: { word } });
        return { content: [{ type: "text", text: `definition of ${word}` }] };
      },
    );
    // An enum, so a tiny model's forced call is short.
    server.registerTool(
      "pick",
      { description: "Picks a colour", inputSchema: { colour: z.enum(["red", "blue"]) } },
      async ({ colour }) => {
        state.calls.push({ tool: "pick", args: { colour } });
        return { content: [{ type: "text", text: `picked ${colour}` }] };
      },
    );
    return server;
  };
  const http: Server = createServer(async (request, response) => {
    // An old address that redirects, in the same origin, to the server (a client must not follow it blindly).
    if (request.url === "/moved") {
      response.writeHead(307, { location: "/mcp" });
      response.end();
      return;
    }
    state.requests++;
    state.headers.push(request.headers);
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString("utf8")) : undefined;
    const server = build();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    response.on("close", () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(request, response, body);
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  state.url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`;
  state.close = () =>
    new Promise<void>((resolve) => {
      http.closeAllConnections();
      http.close(() => resolve());
    });
  return state;
}

/**
 * A real Streamable HTTP MCP server in its own process, with sessions (`Mcp-Session-Id`), so the tests can kill it
 * and start it again on the same port: the new process knows none of the old sessions (it answers them 404).
 * Tools: `whoami` (its pid), `lookup`. Returns the script's path; run it as `node SCRIPT PORT` (0 = any), it
 * prints `listening PORT` once ready.
 */
export function writeHttpMcpServerScript(directory: string): string {
  const sdk = (path: string) =>
    JSON.stringify(join(projectRoot, "node_modules/@modelcontextprotocol/sdk/dist/esm", path));
  const script = join(directory, "mcp-http-server.mjs");
  writeFileSync(
    script,
    `import { createServer } from "node:http";
import { randomUUID } from "node:crypto";
import { McpServer } from ${sdk("server/mcp.js")};
import { StreamableHTTPServerTransport } from ${sdk("server/streamableHttp.js")};
import { z } from ${JSON.stringify(join(projectRoot, "node_modules/zod/index.js"))};
const sessions = new Map();
const text = (value) => ({ content: [{ type: "text", text: String(value) }] });
function build() {
  const server = new McpServer({ name: "test-http-process", version: "1.0.0" });
  server.registerTool("whoami", { description: "The server's process id" }, async () => text(process.pid));
  server.registerTool("lookup", { description: "Looks a word up", inputSchema: { word: z.string() } },
    async ({ word }) => text("definition of " + word));
  return server;
}
const http = createServer(async (request, response) => {
  const chunks = [];
  for await (const chunk of request) chunks.push(chunk);
  const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString("utf8")) : undefined;
  const id = request.headers["mcp-session-id"];
  let transport = id ? sessions.get(id) : undefined;
  if (id && !transport) {
    response.writeHead(404, { "content-type": "application/json" });
    response.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32001, message: "Session not found" }, id: null }));
    return;
  }
  if (!transport) {
    transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (sessionId) => sessions.set(sessionId, transport),
    });
    await build().connect(transport);
  }
  await transport.handleRequest(request, response, body);
});
http.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
  process.stdout.write("listening " + http.address().port + "\\n");
});
`,
  );
  return script;
}
