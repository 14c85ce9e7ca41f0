import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport, StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { type CallToolResult, McpError, ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import type { McpServerConfig } from "../config/fileConfig.js";
import { FreeholdError } from "../core/errors.js";
import type { HostedTool, HostedToolResult } from "../core/toolHost.js";

/** The most tools one server may list (pages are followed up to this); a runaway server cannot fill memory. */
const maxTools = 512;
/** The least time a server gets to start and answer `initialize` (its `timeout` when longer). */
const startTimeoutSeconds = 30;
/** How much of a stdio server's stderr is kept to explain why it died. */
const stderrTail = 2048;

/** An MCP server that could not be reached, died, or did not answer in time (a 502 to the client). */
export class McpServerError extends FreeholdError {
  constructor(message: string, code = "mcp_server_error", cause?: unknown) {
    super(message, { code, status: 502, type: "server_error", retryable: true, cause });
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * One configured MCP server: connected on first use, reconnected on the next use after it died (a stdio program
 * that exited, an HTTP session that closed), its tool list cached until the server says it changed.
 */
export class McpConnection {
  private client: Client | undefined;
  private connecting: Promise<Client> | undefined;
  private tools: HostedTool[] | undefined;
  private stderr = "";
  /** How many times a connection was (re)made; the first start counts as 1. */
  starts = 0;

  constructor(
    readonly name: string,
    private readonly config: McpServerConfig,
    /** freehold's version, announced to the server in `initialize`. */
    private readonly version = "0.0.0",
    /** A server a client named by URL: no redirect is followed at all (the owner's servers may redirect in-origin). */
    private readonly clientChosen = false,
  ) {}

  /** The stdio program's process id while it runs (tests kill it to check the restart). */
  get pid(): number | null {
    const transport = this.client?.transport;
    return transport instanceof StdioClientTransport ? transport.pid : null;
  }

  private transport(): Transport {
    if (this.config.url) {
      return new StreamableHTTPClientTransport(new URL(this.config.url), {
        requestInit: {
          headers: { ...this.config.headers },
          ...(this.clientChosen ? { redirect: "error" as const } : {}),
        },
      });
    }
    const [command, ...args] = this.config.command!;
    const transport = new StdioClientTransport({
      command: command!,
      args,
      ...(this.config.env ? { env: this.config.env } : {}),
      ...(this.config.cwd ? { cwd: this.config.cwd } : {}),
      stderr: "pipe",
    });
    // Drained (a full pipe would stall the program) and kept short, to say why it died.
    transport.stderr?.on("data", (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString("utf8")).slice(-stderrTail);
    });
    return transport;
  }

  private connect(): Promise<Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= (async () => {
      const client = new Client({ name: "freehold", version: this.version });
      client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
        this.tools = undefined;
      });
      client.onclose = () => {
        // The next use starts it again (lazily, as the first time).
        if (this.client === client) {
          this.client = undefined;
          this.tools = undefined;
        }
      };
      try {
        // Starting a program (a cold `npx`, a loaded machine) may take longer than a call should.
        await client.connect(this.transport(), { timeout: Math.max(this.config.timeout, startTimeoutSeconds) * 1000 });
      } catch (error) {
        await client.close().catch(() => {});
        throw new McpServerError(
          `MCP server ${this.name} could not be started or reached: ${describe(error)}${this.stderrNote()}`,
          "mcp_server_unavailable",
          error,
        );
      }
      this.starts++;
      this.client = client;
      return client;
    })().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private stderrNote(): string {
    const tail = this.stderr.trim();
    return tail ? ` (its stderr ends: ${tail.slice(-300)})` : "";
  }

  /** The server's tools, from the cache unless it said the list changed (or it restarted). */
  async listTools(signal?: AbortSignal): Promise<HostedTool[]> {
    if (this.tools) return this.tools;
    let client: Client | undefined;
    const tools: HostedTool[] = [];
    let cursor: string | undefined;
    try {
      client = await this.connect();
      do {
        const page = await this.onClient((current) => {
          client = current;
          return current.listTools(cursor ? { cursor } : {}, this.requestOptions(signal));
        });
        for (const tool of page.tools) {
          tools.push({
            server: this.name,
            name: tool.name,
            ...(tool.description ? { description: tool.description } : {}),
            inputSchema: tool.inputSchema as Record<string, unknown>,
            readOnly: tool.annotations?.readOnlyHint === true,
          });
        }
        cursor = page.nextCursor;
      } while (cursor && tools.length < maxTools);
    } catch (error) {
      if (error instanceof McpServerError) throw error;
      throw this.failure("listing its tools", error);
    }
    if (this.client === client) this.tools = tools.slice(0, maxTools);
    return tools.slice(0, maxTools);
  }

  /** One call; the result's text is cut at `max_result_bytes` (and says so), other content is described. */
  async callTool(tool: string, args: Record<string, unknown>, signal?: AbortSignal): Promise<HostedToolResult> {
    let result: CallToolResult;
    try {
      result = (await this.onClient((client) =>
        client.callTool({ name: tool, arguments: args }, undefined, this.requestOptions(signal)),
      )) as CallToolResult;
    } catch (error) {
      if (error instanceof McpServerError) throw error;
      throw this.failure(`calling ${tool}`, error);
    }
    return { output: this.capped(resultText(result)), isError: result.isError === true };
  }

  /**
   * One request on the connected client. An HTTP server has no process of ours to watch, so its death shows here:
   * a server that answers 404 to our session restarted and forgot it (the MCP spec says: start a new session), so
   * the request is sent once more on a new one (the server ran nothing); a server that cannot be reached at all is
   * connected afresh on the next use.
   */
  private async onClient<T>(run: (client: Client) => Promise<T>): Promise<T> {
    const client = await this.connect();
    try {
      return await run(client);
    } catch (error) {
      if (!this.config.url) throw error;
      if (error instanceof StreamableHTTPError && error.code === 404) {
        await this.drop(client);
        return run(await this.connect());
      }
      // A JSON-RPC error (the server answered, or our timeout) leaves the session as it was.
      if (!(error instanceof McpError)) await this.drop(client);
      throw error;
    }
  }

  private async drop(client: Client): Promise<void> {
    if (this.client !== client) return;
    this.client = undefined;
    this.tools = undefined;
    await client.close().catch(() => {});
  }

  private requestOptions(signal?: AbortSignal) {
    return { timeout: this.config.timeout * 1000, ...(signal ? { signal } : {}) };
  }

  private failure(doing: string, error: unknown): McpServerError {
    const timedOut = /timed out|timeout/i.test(describe(error));
    return new McpServerError(
      timedOut
        ? `MCP server ${this.name} did not answer within ${this.config.timeout} s while ${doing}; raise mcp_servers.${this.name}.timeout if it needs longer`
        : `MCP server ${this.name} failed while ${doing}: ${describe(error)}${this.stderrNote()}`,
      timedOut ? "mcp_timeout" : "mcp_server_error",
      error,
    );
  }

  private capped(text: string): string {
    const max = this.config.max_result_bytes;
    const bytes = Buffer.from(text, "utf8");
    if (bytes.byteLength <= max) return text;
    // Cut on a character boundary: decoding a prefix drops a partial last character as U+FFFD, removed here.
    const kept = bytes
      .subarray(0, max)
      .toString("utf8")
      .replace(/\uFFFD$/, "");
    return `${kept}\n[result cut: ${bytes.byteLength} bytes, the limit is ${max} (mcp_servers.${this.name}.max_result_bytes)]`;
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.tools = undefined;
    await client?.close().catch(() => {});
  }
}

/** A tool result as the text a model reads: text parts joined; other parts named, since these models read text. */
export function resultText(result: CallToolResult): string {
  const parts = (result.content ?? []).map((part) => {
    switch (part.type) {
      case "text":
        return part.text;
      case "resource":
        return "text" in part.resource ? part.resource.text : `[resource ${part.resource.uri}]`;
      case "resource_link":
        return `[resource ${part.uri}]`;
      default:
        return `[${part.type} content]`;
    }
  });
  if (parts.length === 0 && result.structuredContent !== undefined) return JSON.stringify(result.structuredContent);
  return parts.join("\n");
}
