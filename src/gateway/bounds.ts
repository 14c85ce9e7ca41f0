import type { GenerateRequest, ModelPort } from "../core/chat.js";
import type { MeterTarget } from "../core/metering.js";
import { applyProfile, type ProfileSource } from "../core/profile.js";

/** Per-message template overhead (role markers, separators) added to the byte count, in tokens. */
const messageOverhead = 8;

export function bytes(text: string): number {
  return Buffer.byteLength(text, "utf8");
}

/**
 * An upper bound on a request's prompt tokens without tokenizing: a token is at least one byte for the tokenizers
 * GGUF models use (byte-level BPE, SentencePiece with byte fallback), plus template overhead per message.
 */
export function promptTokenBound(request: GenerateRequest): number {
  if (request.kind === "completion")
    return typeof request.prompt === "string" ? bytes(request.prompt) + 2 : request.prompt.length + 2;
  let total = 16;
  for (const message of request.messages) {
    total += bytes(message.content) + messageOverhead + (message.name ? bytes(message.name) : 0);
    for (const call of message.toolCalls ?? []) total += bytes(call.name) + bytes(call.arguments) + 16;
  }
  for (const tool of request.tools ?? []) total += bytes(JSON.stringify(tool)) + 16;
  if (request.responseFormat?.type === "json-schema") total += bytes(JSON.stringify(request.responseFormat.schema));
  return total;
}

/**
 * Hidden tokens a paid provider adds that the request's bytes do not show: its own system prompt for tool use
 * (Anthropic documents a few hundred tokens) and per-request framing. A margin, not a measured figure.
 */
export const REMOTE_TOOL_OVERHEAD = 1024;
export const REMOTE_REQUEST_OVERHEAD = 64;

/**
 * An upper bound on a remote model's prompt tokens: paid providers' tokenizers are byte-level BPE (tiktoken,
 * Anthropic's), where a token is at least one byte, so the prompt's bytes (promptTokenBound) bound its text; the
 * hidden overhead above is added on top.
 */
export function remotePromptBound(request: GenerateRequest): number {
  const tools = request.kind === "chat" && (request.tools?.length ?? 0) > 0;
  return promptTokenBound(request) + REMOTE_REQUEST_OVERHEAD + (tools ? REMOTE_TOOL_OVERHEAD : 0);
}

/**
 * A true upper bound on the prompt's tokens over every target that may answer: local models tokenize it (chat
 * template and tools included, and a routed local target's own profile, as the router will apply it), remote ones
 * get the byte bound (remotePromptBound). Tokenizing costs a round trip to the runner: only for keys with token limits.
 */
export async function tokenizedPromptBound(
  local: ModelPort,
  profiles: ProfileSource,
  request: GenerateRequest,
  targets: MeterTarget[],
): Promise<number> {
  const localModels = [...new Set(targets.filter((target) => !target.remote).map((target) => target.model))];
  const counts = await Promise.all(
    localModels.map(async (model) => {
      // The request is already profiled for the name asked for; a route's local target adds its own profile.
      const own = model === request.model ? undefined : await profiles.profile(model);
      // A model that cannot be counted cannot run either: the byte bound stands in until generation fails.
      return local.countTokens(applyProfile({ ...request, model }, own)).catch(() => promptTokenBound(request));
    }),
  );
  const remote = targets.some((target) => target.remote) ? [remotePromptBound(request)] : [];
  return Math.max(0, ...counts, ...remote);
}
