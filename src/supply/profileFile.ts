import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import type { Role } from "../core/chat.js";
import { InvalidRequestError } from "../core/errors.js";
import {
  type FlashAttentionMode,
  flashAttentionModes,
  type KvCacheType,
  kvCacheTypes,
  memorySettingsProblem,
} from "../core/memorySettings.js";
import type { ModelProfile } from "../core/profile.js";

/** A parsed profile file: the base model it names and what it sets. */
export interface ProfileDefinition {
  from: string;
  profile: ModelProfile;
}

/** Ollama's parameter names → where they go in a profile, and whether they must be integers. */
const parameters = {
  temperature: { target: "temperature", integer: false },
  top_p: { target: "topP", integer: false },
  top_k: { target: "topK", integer: true },
  min_p: { target: "minP", integer: false },
  repeat_penalty: { target: "repeatPenalty", integer: false },
  presence_penalty: { target: "presencePenalty", integer: false },
  frequency_penalty: { target: "frequencyPenalty", integer: false },
  repeat_last_n: { target: "repeatLastN", integer: true },
  seed: { target: "seed", integer: true },
  num_predict: { target: "maxTokens", integer: true },
} as const;

const notPerModel: Record<string, string> = {
  num_ctx: "the context size is per server in freehold: set FREEHOLD_CONTEXT_SIZE or `serve --context-size`",
  num_thread: "threads are per server in freehold: set FREEHOLD_THREADS",
  num_gpu: "GPU layers are per server in freehold: set FREEHOLD_GPU_LAYERS",
};

const roles = new Set<Role>(["system", "user", "assistant", "tool"]);

function invalid(message: string, field: string): InvalidRequestError {
  return new InvalidRequestError(`profile: ${message}`, field);
}

/** Sets one parameter (Ollama's name, text or number value) on a profile, checking its name and value. */
export function setParameter(profile: ModelProfile, name: string, value: unknown): void {
  const key = name.toLowerCase();
  if (key === "stop") {
    const stops = Array.isArray(value) ? value : [value];
    for (const stop of stops) {
      if (typeof stop !== "string" || stop.length === 0)
        throw invalid("parameter stop must be a non-empty text", "stop");
    }
    profile.limits = { ...profile.limits, stop: [...(profile.limits?.stop ?? []), ...(stops as string[])] };
    return;
  }
  if (key === "overflow") {
    // freehold's own parameter: what to do with a prompt longer than the context (docs/overflow.md).
    if (value !== "error" && value !== "truncate-middle" && value !== "shift")
      throw invalid(`parameter overflow must be error, truncate-middle or shift, not ${JSON.stringify(value)}`, key);
    profile.overflow = value;
    return;
  }
  if (key in notPerModel) throw invalid(`parameter ${key} is not supported: ${notPerModel[key]}`, key);
  const spec = parameters[key as keyof typeof parameters];
  if (!spec) {
    throw invalid(
      `unknown parameter ${JSON.stringify(name)}; supported: ${[...Object.keys(parameters), "stop"].join(", ")}`,
      key,
    );
  }
  const number =
    typeof value === "number" ? value : typeof value === "string" && value.trim() !== "" ? Number(value) : Number.NaN;
  if (!Number.isFinite(number) || (spec.integer && !Number.isInteger(number))) {
    throw invalid(
      `parameter ${key} must be ${spec.integer ? "an integer" : "a number"}, not ${JSON.stringify(value)}`,
      key,
    );
  }
  if (spec.target === "maxTokens") {
    if (number < 0) throw invalid("parameter num_predict must not be negative", key);
    profile.limits = { ...profile.limits, maxTokens: number };
  } else {
    profile.sampling = { ...profile.sampling, [spec.target]: number };
  }
}

// Jinja never writes `{{ .Field }}` or `{{ if …}}`; Ollama's Go templates always do.
const goTemplatePattern = /\{\{-?\s*(?:\.[A-Za-z$]|\$|(?:if|range|end|else|with|template|block|define)\b)/;

/** Checks a template override: Jinja (the GGUF dialect) is used as is; Ollama's Go templates cannot be rendered. */
export function checkTemplate(template: string): string {
  if (goTemplatePattern.test(template)) {
    throw invalid(
      "TEMPLATE is written in Ollama's Go template syntax ({{ .Prompt }}, {{ range .Messages }}); freehold renders chat templates in Jinja, like the tokenizer.chat_template in GGUF files. Write it in Jinja, or leave it out to use the model's own",
      "template",
    );
  }
  if (template.length > 256 * 1024) throw invalid("the template is longer than 256 KiB", "template");
  return template;
}

function addMessage(profile: ModelProfile, role: string, content: string): void {
  if (!roles.has(role as Role))
    throw invalid(`MESSAGE role ${JSON.stringify(role)} must be system, user or assistant`, "messages");
  profile.messages = [...(profile.messages ?? []), { role: role as Role, content }];
}

/** Reads a quoted or triple-quoted value, or the rest of the line; returns it and where the reading stopped. */
function readValue(text: string, start: number): { value: string; end: number } {
  if (text.startsWith('"""', start)) {
    const close = text.indexOf('"""', start + 3);
    if (close === -1) throw invalid('a """ value is not closed', "modelfile");
    return { value: text.slice(start + 3, close), end: close + 3 };
  }
  if (text[start] === '"') {
    let value = "";
    for (let i = start + 1; i < text.length; i++) {
      const char = text[i]!;
      if (char === "\\" && i + 1 < text.length) {
        value += text[++i];
      } else if (char === '"') {
        return { value, end: i + 1 };
      } else if (char === "\n") {
        break;
      } else {
        value += char;
      }
    }
    throw invalid("a quoted value is not closed on its line", "modelfile");
  }
  const newline = text.indexOf("\n", start);
  const end = newline === -1 ? text.length : newline;
  return { value: text.slice(start, end).trim(), end };
}

/**
 * Parses Ollama's Modelfile syntax: FROM, SYSTEM, PARAMETER, TEMPLATE, MESSAGE, LICENSE (instructions in any case,
 * values plain, "quoted" or """triple-quoted"""; # comments). ADAPTER and REQUIRES are refused.
 */
export function parseModelfile(text: string): ProfileDefinition {
  const profile: ModelProfile = {};
  let from: string | null = null;
  let position = 0;
  while (position < text.length) {
    const lineEnd = text.indexOf("\n", position);
    const line = text.slice(position, lineEnd === -1 ? text.length : lineEnd);
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) {
      position = lineEnd === -1 ? text.length : lineEnd + 1;
      continue;
    }
    const match = /^\s*([A-Za-z]+)\s+/.exec(line);
    if (!match) throw invalid(`cannot read the line ${JSON.stringify(trimmed.slice(0, 80))}`, "modelfile");
    const instruction = match[1]!.toUpperCase();
    let start = position + match[0].length;
    if (instruction === "PARAMETER" || instruction === "MESSAGE") {
      const word = /^(\S+)\s+/.exec(text.slice(start, lineEnd === -1 ? text.length : lineEnd));
      if (!word) throw invalid(`${instruction} needs a name and a value`, "modelfile");
      start += word[0].length;
      const { value, end } = readValue(text, start);
      if (instruction === "PARAMETER") setParameter(profile, word[1]!, value);
      else addMessage(profile, word[1]!.toLowerCase(), value);
      position = end;
    } else {
      const { value, end } = readValue(text, start);
      position = end;
      switch (instruction) {
        case "FROM":
          from = value;
          break;
        case "SYSTEM":
          profile.system = value;
          break;
        case "TEMPLATE":
          profile.template = checkTemplate(value);
          break;
        case "LICENSE":
          profile.license = profile.license === undefined ? value : `${profile.license}\n${value}`;
          break;
        case "ADAPTER":
          throw invalid("ADAPTER (LoRA adapters) is not supported by freehold profiles", "adapter");
        default:
          throw invalid(
            `unknown instruction ${instruction}; profiles use FROM, SYSTEM, PARAMETER, TEMPLATE, MESSAGE and LICENSE`,
            "modelfile",
          );
      }
    }
    const rest = text.indexOf("\n", position);
    if (text.slice(position, rest === -1 ? text.length : rest).trim() !== "") {
      throw invalid(
        `unexpected text after a value: ${JSON.stringify(text.slice(position, rest).trim().slice(0, 60))}`,
        "modelfile",
      );
    }
    position = rest === -1 ? text.length : rest + 1;
  }
  return { from: checkFrom(from), profile };
}

function checkFrom(from: string | null): string {
  if (from === null || from === "") throw invalid("FROM is required: name the model this profile is based on", "from");
  if (from.toLowerCase().endsWith(".gguf") || from.startsWith("/") || from.startsWith(".")) {
    throw invalid(
      `FROM ${from} is a file; import it first (\`freehold import FILE --name NAME\`), then use FROM NAME`,
      "from",
    );
  }
  return from;
}

/** `kv_cache_type` and `flash_attention` of a YAML profile (flash_attention may be YAML's true/false). */
function setMemorySettings(profile: ModelProfile, kvCacheType: unknown, flashAttention: unknown): void {
  if (kvCacheType !== undefined && kvCacheType !== null) {
    if (typeof kvCacheType !== "string" || !(kvCacheTypes as readonly string[]).includes(kvCacheType.toLowerCase()))
      throw invalid(
        `kv_cache_type must be one of ${kvCacheTypes.join(", ")}, not ${JSON.stringify(kvCacheType)}`,
        "kv_cache_type",
      );
    profile.kvCacheType = kvCacheType.toLowerCase() as KvCacheType;
  }
  if (flashAttention !== undefined && flashAttention !== null) {
    const mode = flashAttention === true ? "on" : flashAttention === false ? "off" : flashAttention;
    if (typeof mode !== "string" || !(flashAttentionModes as readonly string[]).includes(mode.toLowerCase()))
      throw invalid(
        `flash_attention must be one of ${flashAttentionModes.join(", ")}, not ${JSON.stringify(flashAttention)}`,
        "flash_attention",
      );
    profile.flashAttention = mode.toLowerCase() as FlashAttentionMode;
  }
  if (profile.kvCacheType && profile.flashAttention) {
    const problem = memorySettingsProblem({ kvCacheType: profile.kvCacheType, flashAttention: profile.flashAttention });
    if (problem) throw invalid(problem, "flash_attention");
  }
}

/** A profile as YAML: from, system, template, parameters (Ollama's names), messages, license. */
export function parseYamlProfile(document: unknown): ProfileDefinition {
  if (typeof document !== "object" || document === null || Array.isArray(document)) {
    throw invalid("a YAML profile must be a mapping with at least `from`", "profile");
  }
  const fields = document as Record<string, unknown>;
  const known = new Set([
    "from",
    "system",
    "template",
    "parameters",
    "messages",
    "license",
    "mcp",
    "kv_cache_type",
    "flash_attention",
    "draft",
  ]);
  for (const key of Object.keys(fields)) {
    if (!known.has(key))
      throw invalid(`unknown field ${JSON.stringify(key)}; fields are ${[...known].join(", ")}`, key);
  }
  const profile: ModelProfile = {};
  const text = (key: string) => {
    const value = fields[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "string") throw invalid(`${key} must be a text`, key);
    return value;
  };
  const from = text("from") ?? null;
  const system = text("system");
  if (system !== undefined) profile.system = system;
  const template = text("template");
  if (template !== undefined) profile.template = checkTemplate(template);
  const license = text("license");
  if (license !== undefined) profile.license = license;
  setMemorySettings(profile, fields.kv_cache_type, fields.flash_attention);
  const draft = text("draft");
  if (draft !== undefined) profile.draft = checkFrom(draft);
  const parameterMap = fields.parameters;
  if (parameterMap !== undefined && parameterMap !== null) {
    if (typeof parameterMap !== "object" || Array.isArray(parameterMap))
      throw invalid("parameters must be a mapping", "parameters");
    for (const [name, value] of Object.entries(parameterMap)) setParameter(profile, name, value);
  }
  const mcp = fields.mcp;
  if (mcp !== undefined && mcp !== null) profile.mcp = parseMcpServers(mcp);
  const messages = fields.messages;
  if (messages !== undefined && messages !== null) {
    if (!Array.isArray(messages)) throw invalid("messages must be a list of {role, content}", "messages");
    for (const [i, message] of messages.entries()) {
      const { role, content } = (message ?? {}) as { role?: unknown; content?: unknown };
      if (typeof role !== "string" || typeof content !== "string") {
        throw invalid(`messages[${i}] needs a role and a content, both texts`, `messages.${i}`);
      }
      addMessage(profile, role, content);
    }
  }
  return { from: checkFrom(from), profile };
}

const mcpServerName = /^[A-Za-z0-9_-]{1,64}$/;

/** A profile's `mcp:` list: names of MCP servers (whether freehold.yaml configures them is checkProfileMcp's job). */
function parseMcpServers(value: unknown): string[] {
  if (!Array.isArray(value)) throw invalid("mcp must be a list of MCP server names, like mcp: [files]", "mcp");
  if (value.length > 16) throw invalid("mcp names at most 16 servers", "mcp");
  value.forEach((name, i) => {
    if (typeof name !== "string" || !mcpServerName.test(name))
      throw invalid(
        `mcp[${i}] must be an MCP server's name (1-64 letters, digits, _ -), not ${JSON.stringify(name)}`,
        `mcp.${i}`,
      );
    if (value.indexOf(name) !== i) throw invalid(`mcp[${i}]: the server ${name} is named twice`, `mcp.${i}`);
  });
  return value as string[];
}

/**
 * The rule a route's `mcp:` follows, for a profile: every name must be a server freehold.yaml configures. Checked
 * when a profile is created and whenever the configuration is (re)read. `where` names the profile in the message.
 * @example
 * checkProfileMcp({ mcp: ["files"] }, ["files", "search"], "profile helper"); // passes
 */
export function checkProfileMcp(profile: ModelProfile, configured: readonly string[], where = "profile"): void {
  profile.mcp?.forEach((server, i) => {
    if (!configured.includes(server))
      throw new InvalidRequestError(
        `${where}: mcp[${i}] names the MCP server ${JSON.stringify(server)}, which freehold.yaml does not configure (known: ${configured.join(", ") || "none"}); add it under mcp_servers in freehold.yaml, or leave it out of the profile`,
        `mcp.${i}`,
        "mcp_server_not_found",
      );
  });
}

/** Parses a profile file: YAML when it is a mapping, Ollama's Modelfile syntax otherwise. */
export function parseProfile(text: string): ProfileDefinition {
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch {
    document = undefined;
  }
  if (typeof document === "object" && document !== null && !Array.isArray(document)) return parseYamlProfile(document);
  return parseModelfile(text);
}

const parameterNames = Object.fromEntries(Object.entries(parameters).map(([name, spec]) => [spec.target, name]));

/** The profile's parameters under Ollama's names (for `show` and /api/show). */
export function profileParameters(profile: ModelProfile): Record<string, number | string | string[]> {
  const result: Record<string, number | string | string[]> = {};
  for (const [key, value] of Object.entries(profile.sampling ?? {})) {
    if (value !== undefined) result[parameterNames[key] ?? key] = value;
  }
  if (profile.limits?.maxTokens !== undefined) result.num_predict = profile.limits.maxTokens;
  if (profile.limits?.stop?.length) result.stop = profile.limits.stop;
  if (profile.overflow !== undefined) result.overflow = profile.overflow;
  return result;
}

/** A profile as the YAML `freehold create -f` reads. */
export function formatProfile(from: string, profile: ModelProfile): string {
  const document: Record<string, unknown> = { from };
  if (profile.system !== undefined) document.system = profile.system;
  const parameterValues = profileParameters(profile);
  if (Object.keys(parameterValues).length > 0) document.parameters = parameterValues;
  if (profile.messages?.length) document.messages = profile.messages;
  if (profile.template !== undefined) document.template = profile.template;
  if (profile.license !== undefined) document.license = profile.license;
  if (profile.mcp?.length) document.mcp = profile.mcp;
  return stringifyYaml(document);
}
