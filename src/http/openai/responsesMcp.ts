import { InvalidRequestError } from "../../core/errors.js";
import type { HostedTool, ToolHost } from "../../core/toolHost.js";
import type { ApprovedCall, McpToolset } from "../../gateway/toolLoop.js";
import type { ResponseCreateBody, ResponseMcpTool } from "./responsesSchemas.js";

/** The Responses request's MCP side: which servers the model may use, and the calls the client approved. */
export interface McpPlan {
  toolsets: McpToolset[];
  approved: ApprovedCall[];
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

function toolset(tool: ResponseMcpTool, index: number, host: ToolHost | undefined, seen: Set<string>): McpToolset {
  const field = `tools[${index}]`;
  if (tool.server_url !== undefined)
    throw new InvalidRequestError(
      `${field}.server_url: this server calls only the MCP servers its owner configured in freehold.yaml; leave out server_url and name one in server_label`,
      `${field}.server_url`,
    );
  for (const name of ["headers", "authorization"] as const)
    if (tool[name] !== undefined && tool[name] !== null)
      throw new InvalidRequestError(
        `${field}.${name}: credentials for MCP servers are the owner's (mcp_servers in freehold.yaml); leave out ${name}`,
        `${field}.${name}`,
      );
  if (!host?.has(tool.server_label))
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
  const toolsets = (body.tools ?? []).flatMap((tool, index) =>
    tool.type === "mcp" ? [toolset(tool, index, host, seen)] : [],
  );
  const approved = approvedCalls(body);
  if (toolsets.length === 0 && approved.length === 0) return undefined;
  return { toolsets, approved };
}
