import type { Settings } from "../config/fileConfig.js";
import { mcpDestinations } from "../mcp/egress.js";
import { egressDestinations } from "../routing/table.js";

/** A machine freehold may contact under this configuration, and why. */
export interface EgressDestination {
  origin: string;
  /** What contacts it: "hub", "provider", "mcp", "image". */
  kind: string;
  /** Who uses it and when, for a person reading `doctor --egress`. */
  detail: string;
}

/** One kind of outbound destination. Each is a small function of the settings; add one per new kind of egress. */
export type EgressSource = (settings: Settings) => EgressDestination[];

/** The model hub: `freehold pull`, `pull --locked` and POST /api/pull contact HF_ENDPOINT. */
export const hubDestinations: EgressSource = (settings) => [
  {
    origin: new URL(settings.config.hfEndpoint).origin,
    kind: "hub",
    detail: `model hub (HF_ENDPOINT): contacted by \`freehold pull\` and POST /api/pull (admin keys) only; HF_TOKEN ${settings.config.hfToken ? "is set and sent to this host only" : "is not set"}`,
  },
];

/** Remote providers named in freehold.yaml, with the routes that use them. */
export const providerDestinations: EgressSource = (settings) =>
  egressDestinations(settings.file).map((d) => ({
    origin: d.origin,
    kind: "provider",
    detail: `provider ${d.provider} (${d.kind}); used by route${d.routes.length === 1 ? "" : "s"} ${d.routes.join(", ") || "(none)"}${d.healthChecks ? "; health probes" : ""}`,
  }));

/** Remote MCP servers: a tool call sends the model's arguments there (stdio servers run here and are not egress). */
export const mcpServerDestinations: EgressSource = (settings) => [
  ...mcpDestinations(settings.file)
    .filter((server) => server.remote)
    .map((server) => ({
      origin: server.destination,
      kind: "mcp",
      detail: `mcp server ${server.server}; tool calls send arguments there; attached to route${server.routes.length === 1 ? "" : "s"} ${server.routes.join(", ") || "(none; Responses requests may name it)"}`,
    })),
  // Not one origin but any: whoever holds a key that may leave the machine chooses where.
  ...(settings.file?.mcp_allow_client_servers
    ? [
        {
          origin: "(any https:// URL a client names)",
          kind: "mcp",
          detail:
            "client-chosen servers allowed (mcp_allow_client_servers): a Responses request's server_url (https, or http on loopback) is called with the model's arguments and the client's headers; refused for local-only keys and routes and offline",
        },
      ]
    : []),
];

/** Image URLs (FREEHOLD_IMAGE_FETCH): a request's image URL on one of these hosts is fetched (GET, public addresses only). */
export const imageDestinations: EgressSource = (settings) =>
  settings.config.imageFetch.map((host) => ({
    origin: host === "*" ? "(any public http(s) host a client names)" : host,
    kind: "image",
    detail: `image URLs in requests (FREEHOLD_IMAGE_FETCH): fetched with a GET, ${host.includes(":") ? "on this port" : "ports 80 and 443"}, public addresses only, any key (local-only ones too: the image goes to the local model only)`,
  }));

export const egressSources: EgressSource[] = [
  hubDestinations,
  providerDestinations,
  mcpServerDestinations,
  imageDestinations,
];

/** Every destination the configuration could reach; `offline` says they are all forbidden. */
export function egressReport(settings: Settings): { offline: boolean; destinations: EgressDestination[] } {
  return { offline: settings.offline, destinations: egressSources.flatMap((source) => source(settings)) };
}
