import { InvalidRequestError } from "../../core/errors.js";
import type { ClientServer, HostedTool, ToolHost } from "../../core/toolHost.js";
import type { ApprovedCall, McpToolset } from "../../gateway/toolLoop.js";
import type { ResponseCreateBody, ResponseMcpTool } from "./schemas.js";

/** The Responses request's MCP side: which servers the model may use, and the calls the client approved. */
export interface McpPlan {
  toolsets: McpToolset[];
  approved: ApprovedCall[];
  /** Servers named by URL (only when the owner allows client-chosen servers), by label. */
  clientServers?: Record<string, ClientServer>;
}

type Filter = { tool_names?: string[] | undefined; read_only?: boolean | undefined };

/** OpenAI's filter: a tool matches when its name is listed or (with read_only) the server marks it read-only. */
function matches(filter: Filter | undefined, tool: HostedTool): boolean {
  if (!filter) return false;
  if (filter.tool_names?.includes(tool.name)) return true;
  return filter.read_only === true && tool.readOnly;
}

/** `require_approval`: "never", "always", or filters; anything not matched by `never` asks (OpenAI's default). */
function approvalRule(rule: ResponseMcpTool["require_approval"]): (tool: HostedTool) => boolean {
  if (rule === "never") return () => false;
  if (rule === "always" || rule === null || rule === undefined) return () => true;
  return (tool) => (matches(rule.always, tool) ? true : !matches(rule.never, tool));
}

function allowRule(allowed: ResponseMcpTool["allowed_tools"]): ((tool: HostedTool) => boolean) | undefined {
  if (allowed === null || allowed === undefined) return undefined;
  if (Array.isArray(allowed)) return (tool) => allowed.includes(tool.name);
  return (tool) =>
    (allowed.tool_names ? allowed.tool_names.includes(tool.name) : true) && (!allowed.read_only || tool.readOnly);
}

/** Headers the transport sets itself (or that would change what a request means): a client may not set them. */
const reservedHeaders = new Set([
  "host",
  "content-length",
  "content-type",
  "accept",
  "connection",
  "keep-alive",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
  "proxy-authorization",
  "mcp-session-id",
  "mcp-protocol-version",
  "last-event-id",
]);
const headerName = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$/;
const headerValue = /^[^\r\n\0]{0,8192}$/;

function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * A server the client names by URL (the owner allows it): https anywhere, plain http only to this machine, no
 * credentials in the URL; the client's headers and bearer token go with it, minus those the transport owns.
 */
function clientServer(tool: ResponseMcpTool, field: string, host: ToolHost): ClientServer {
  const raw = tool.server_url!;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InvalidRequestError(`${field}.server_url: not a URL; give https://…`, `${field}.server_url`);
  }
  if (raw.length > 2048)
    throw new InvalidRequestError(`${field}.server_url: longer than 2048 characters`, `${field}.server_url`);
  if (url.protocol !== "https:" && !(url.protocol === "http:" && isLoopback(url.hostname)))
    throw new InvalidRequestError(
      `${field}.server_url: must be https:// (plain http:// only to this machine: localhost, 127.0.0.1, [::1])`,
      `${field}.server_url`,
    );
  if (url.username || url.password)
    throw new InvalidRequestError(
      `${field}.server_url: carries credentials; send them in authorization or headers instead`,
      `${field}.server_url`,
    );
  if (host.has(tool.server_label))
    throw new InvalidRequestError(
      `${field}.server_label: ${tool.server_label} is the name of a server the owner configured; give the server named by URL another label`,
      `${field}.server_label`,
    );
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(tool.headers ?? {})) {
    if (!headerName.test(name) || reservedHeaders.has(name.toLowerCase()))
      throw new InvalidRequestError(
        `${field}.headers: ${JSON.stringify(name.slice(0, 64))} ${headerName.test(name) ? "is set by freehold's MCP client" : "is not a valid header name"}; leave it out`,
        `${field}.headers`,
      );
    if (!headerValue.test(value))
      throw new InvalidRequestError(
        `${field}.headers.${name}: a header value is one line of at most 8192 characters`,
        `${field}.headers`,
      );
    headers[name] = value;
  }
  if (Object.keys(headers).length > 32)
    throw new InvalidRequestError(`${field}.headers: at most 32 headers`, `${field}.headers`);
  if (tool.authorization !== undefined) {
    if (Object.keys(headers).some((name) => name.toLowerCase() === "authorization"))
      throw new InvalidRequestError(
        `${field}.authorization: headers has an Authorization header too; give the token once`,
        `${field}.authorization`,
      );
    if (!/^[^\s]{1,8192}$/.test(tool.authorization))
      throw new InvalidRequestError(
        `${field}.authorization: an OAuth access token: one word (no spaces or line breaks) of at most 8192 characters`,
        `${field}.authorization`,
      );
    headers.Authorization = `Bearer ${tool.authorization}`;
  }
  return { url: url.href, headers };
}

function toolset(
  tool: ResponseMcpTool,
  index: number,
  host: ToolHost | undefined,
  seen: Set<string>,
  clientServers: Record<string, ClientServer>,
): McpToolset {
  const field = `tools[${index}]`;
  if (tool.server_url !== undefined && !host?.allowsClientServers())
    throw new InvalidRequestError(
      `${field}.server_url: this server calls only the MCP servers its owner configured in freehold.yaml (the owner may allow servers chosen by clients with mcp_allow_client_servers: true); leave out server_url and name one in server_label`,
      `${field}.server_url`,
    );
  if (tool.server_url === undefined)
    for (const name of ["headers", "authorization"] as const)
      if (tool[name] !== undefined && tool[name] !== null)
        throw new InvalidRequestError(
          `${field}.${name}: credentials for the owner's MCP servers are the owner's (mcp_servers in freehold.yaml); leave out ${name}`,
          `${field}.${name}`,
        );
  if (tool.server_url !== undefined) clientServers[tool.server_label] = clientServer(tool, field, host!);
  else if (!host?.has(tool.server_label))
    throw new InvalidRequestError(
      `${field}.server_label: no MCP server named ${JSON.stringify(tool.server_label)} is configured here; the owner adds servers under mcp_servers in freehold.yaml`,
      `${field}.server_label`,
      "mcp_server_not_found",
    );
  if (seen.has(tool.server_label))
    throw new InvalidRequestError(
      `${field}.server_label: the MCP server ${tool.server_label} is named twice; give it once`,
      `${field}.server_label`,
    );
  seen.add(tool.server_label);
  const allows = allowRule(tool.allowed_tools);
  return {
    server: tool.server_label,
    requiresApproval: approvalRule(tool.require_approval),
    ...(allows ? { allows } : {}),
  };
}

/** Approvals in the input: each names an approval request item of the same input; one already run is not rerun. */
function approvedCalls(body: ResponseCreateBody): ApprovedCall[] {
  if (typeof body.input === "string") return [];
  const requests = new Map<string, { server: string; name: string; arguments: string }>();
  const done = new Set<string>();
  for (const item of body.input) {
    if (item.type === "mcp_approval_request")
      requests.set(item.id, { server: item.server_label, name: item.name, arguments: item.arguments });
    if (item.type === "mcp_call" && item.approval_request_id) done.add(item.approval_request_id);
  }
  const approved: ApprovedCall[] = [];
  body.input.forEach((item, index) => {
    if (item.type !== "mcp_approval_response" || !item.approve || done.has(item.approval_request_id)) return;
    const request = requests.get(item.approval_request_id);
    if (!request)
      throw new InvalidRequestError(
        `input[${index}].approval_request_id: no mcp_approval_request item with the id ${JSON.stringify(item.approval_request_id)} is in input; this server keeps no state, so send the approval request item back with its answer`,
        `input[${index}].approval_request_id`,
      );
    approved.push({ approvalRequestId: item.approval_request_id, ...request });
  });
  return approved;
}

/** The plan for a request with `mcp` tools or MCP input items; undefined when it has neither. */
export function mcpPlan(body: ResponseCreateBody, host: ToolHost | undefined): McpPlan | undefined {
  const seen = new Set<string>();
  const clientServers: Record<string, ClientServer> = {};
  const toolsets = (body.tools ?? []).flatMap((tool, index) =>
    tool.type === "mcp" ? [toolset(tool, index, host, seen, clientServers)] : [],
  );
  const approved = approvedCalls(body);
  if (toolsets.length === 0 && approved.length === 0) return undefined;
  return { toolsets, approved, ...(Object.keys(clientServers).length > 0 ? { clientServers } : {}) };
}
