import type {
  ChatHistoryItem,
  ChatModelFunctionCall,
  ChatModelFunctions,
  ChatWrapper,
  ChatWrapperSettings,
  GbnfJsonSchema,
  JinjaTemplateChatWrapper,
  LlamaText,
} from "node-llama-cpp";
import type { ChatMessage, GenerateRequest, ToolDefinition } from "../../core/chat.js";
import type { NativeToolFormat } from "../../core/toolFormat.js";
import { forcesToolCall } from "../../core/tools.js";

type NodeLlamaCpp = typeof import("node-llama-cpp");
type FunctionSettings = ChatWrapperSettings["functions"];

/**
 * A model's own tool-call format: the chat wrapper that renders tools and earlier calls and results the way the
 * model was trained to see them, the format its calls are read in, and how a forced call is constrained.
 */
export interface NativeTools {
  /** Where the format comes from and what it looks like, for `/api/show` and the docs. */
  description: string;
  wrapper: ChatWrapper;
  format: NativeToolFormat;
  /**
   * A forced call (`tool_choice` required or named) when the call is one JSON object: the text that opens it goes at
   * the end of the prompt and the JSON-schema grammar writes the object, with the arguments under `argumentsKey`.
   * Null when the format cannot be constrained that way (name outside the JSON: Harmony, `<function=…>`); forced
   * calls then take the JSON path (tools described in the system message, grammar-enforced JSON).
   */
  forced: { prefix: LlamaText; argumentsKey: string } | null;
  /** Makes the rendered prompt end as the model expects its answer to start (Functionary: with `>>>`). */
  promptEnd?: (text: LlamaText) => LlamaText;
}

/**
 * Families whose templates node-llama-cpp cannot read a tool format from, recognised by markers only their templates
 * hold, and node-llama-cpp's own wrapper for each. Hermes' template uses `loop.previtem`, which the Jinja
 * interpreter lacks; Mistral's and gpt-oss's templates render calls in ways the extraction does not follow.
 */
const familyWrappers: { family: string; markers: string[]; create: (nlc: NodeLlamaCpp) => ChatWrapper }[] = [
  { family: "mistral", markers: ["[TOOL_CALLS]"], create: (nlc) => new nlc.MistralChatWrapper() },
  { family: "harmony", markers: ["<|start|>", "<|channel|>"], create: (nlc) => new nlc.HarmonyChatWrapper() },
  {
    family: "hermes",
    markers: ["<tool_call>", "<|im_start|>"],
    create: (nlc) => new nlc.QwenChatWrapper({ thoughts: "discourage" }),
  },
];

/**
 * The native tool format for a model: the template's own (node-llama-cpp reads it from the Jinja when the template
 * renders `tools` and `tool_calls`), else node-llama-cpp's wrapper for a family the template's markers name, else
 * null (the JSON path).
 */
export function resolveNativeTools(
  nlc: NodeLlamaCpp,
  template: string | undefined,
  jinja: JinjaTemplateChatWrapper | undefined,
): NativeTools | null {
  if (template && jinja && isFunctionary(template)) return functionaryTools(nlc, jinja);
  if (jinja?.usingJinjaFunctionCallTemplate) {
    const derived = formatFrom(nlc, jinja.settings.functions);
    if (derived)
      return withBuiltins({ ...derived, wrapper: jinja, description: `template: ${derived.description}` }, template);
  }
  if (!template) return null;
  for (const family of familyWrappers) {
    if (!family.markers.every((marker) => template.includes(marker))) continue;
    const wrapper = family.create(nlc);
    const derived = formatFrom(nlc, wrapper.settings.functions, callTriggers(nlc, wrapper));
    if (derived) return { ...derived, wrapper, description: `node-llama-cpp ${family.family}: ${derived.description}` };
  }
  return null;
}

/** Llama 3.1's built-in tool tag: a template that knows it gets it read as a call opener too. */
const PYTHON_TAG = "<|python_tag|>";

function withBuiltins(native: NativeTools, template: string | undefined): NativeTools {
  if (!template?.includes(PYTHON_TAG) || native.format.call.kind !== "json-object") return native;
  const openers = [...native.format.openers.filter((opener) => opener !== PYTHON_TAG), PYTHON_TAG];
  return {
    ...native,
    format: { ...native.format, openers, builtinOpener: PYTHON_TAG },
    description: `${native.description}, or ${PYTHON_TAG}NAME.call(…) / code`,
  };
}

/**
 * Functionary v3.2 (MeetKai, Llama 3.1 based): the answer is segments `>>>RECIPIENT\n…`, where the recipient `all`
 * is the user (plain text) and any other is a function whose JSON arguments follow. Its template says so
 * (`>>>${recipient}`) and ends the prompt with `>>>`.
 */
function isFunctionary(template: string): boolean {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the template's own text, not a JavaScript template.
  return template.includes(">>>${recipient}") && template.includes(">>>all");
}

/**
 * Functionary's tools: its own template renders tools (as a TypeScript namespace), earlier calls and results;
 * node-llama-cpp's reading of the template ends the prompt with `>>>all\n` (its rendering of an assistant turn),
 * which would keep the model from calling, so the prompt is cut back to the template's own `>>>`. A forced call
 * takes the JSON path (the name is outside the JSON).
 */
function functionaryTools(nlc: NodeLlamaCpp, jinja: JinjaTemplateChatWrapper): NativeTools {
  const answerPrefix = ">>>";
  const promptEnd = (text: LlamaText): LlamaText => {
    const parts = text.toJSON();
    const values = Array.isArray(parts) ? [...parts] : [parts];
    const last = values.at(-1);
    const lastText = typeof last === "string" ? last : last?.type === "specialTokensText" ? last.value : undefined;
    const cut = lastText?.lastIndexOf(answerPrefix) ?? -1;
    if (lastText === undefined || cut === -1) return text;
    const kept = lastText.slice(0, cut + answerPrefix.length);
    values[values.length - 1] = typeof last === "string" ? kept : { type: "specialTokensText", value: kept };
    return nlc.LlamaText.fromJSON(values);
  };
  return {
    description: "template (functionary): >>>NAME {…}, text as >>>all …",
    wrapper: jinja,
    format: {
      name: "functionary",
      openers: [answerPrefix],
      call: { kind: "name-then-json" },
      array: false,
      closers: [],
      textMarkers: [`${answerPrefix}all\n`],
      answerPrefix,
    },
    forced: null,
    promptEnd,
  };
}

/** Plain text of a format piece, special tokens spelled out (as the detokenizer writes them with special tokens). */
function textOf(nlc: NodeLlamaCpp, value: string | LlamaText | undefined): string {
  if (value === undefined) return "";
  if (typeof value === "string") return value;
  const json = nlc.LlamaText(value).toJSON();
  return (Array.isArray(json) ? json : [json])
    .map((part) => (typeof part === "string" ? part : part.type === "specialTokensText" ? part.value : ""))
    .join("");
}

/**
 * The texts after which a wrapper's model is calling a function (its prefix triggers: gpt-oss's
 * `<|channel|>commentary to=`), so the text that opens a call is not taken for the answer.
 */
function callTriggers(nlc: NodeLlamaCpp, wrapper: ChatWrapper): string[] {
  try {
    const state = wrapper.generateContextState({
      chatHistory: [
        { type: "user", text: "?" },
        { type: "model", response: [] },
      ],
      availableFunctions: { probe: { description: "probe" } },
    });
    if (!("prefixTriggers" in state) || !state.prefixTriggers) return [];
    return state.prefixTriggers
      .filter((trigger) => trigger.type === "functionCall")
      .flatMap((trigger) => trigger.triggers.map((text) => textOf(nlc, text)));
  } catch {
    return [];
  }
}

function formatFrom(
  nlc: NodeLlamaCpp,
  functions: FunctionSettings,
  triggers: string[] = [],
): { format: NativeToolFormat; forced: NativeTools["forced"]; description: string } | null {
  const prefix = textOf(nlc, functions.call.prefix);
  const paramsPrefix = textOf(nlc, functions.call.paramsPrefix);
  const section = functions.parallelism?.call;
  const sectionPrefix = textOf(nlc, section?.sectionPrefix);
  const array = sectionPrefix.trimEnd().endsWith("[");
  const sectionOpener = (array ? sectionPrefix.trimEnd().slice(0, -1) : sectionPrefix).trim();
  const alternates = [
    ...(functions.call.prefixAlternateMatches ?? []),
    ...(section?.sectionPrefixAlternateMatches ?? []),
  ]
    .map((value) => textOf(nlc, value).trim())
    .filter(Boolean);
  // Whatever closes a call or a section; a leading "}" belongs to the call's JSON object, which is read whole.
  const closers = [
    functions.call.suffix,
    section?.betweenCalls,
    section?.sectionSuffix,
    functions.result.prefix,
    functions.parallelism?.result?.sectionPrefix,
  ]
    .map((value) => textOf(nlc, value).trim().replace(/^\}/, "").trim())
    .filter(Boolean);
  const jsonCall = /^([\s\S]*?)\{\s*"name"\s*:\s*"$/.exec(prefix);
  const argumentsKey = /^"\s*,\s*"([^"]+)"\s*:\s*$/.exec(paramsPrefix)?.[1];
  if (jsonCall && argumentsKey) {
    const callOpener = jsonCall[1]!.trim();
    const openers = [...new Set([sectionOpener, callOpener, ...alternates].filter(Boolean))];
    const format: NativeToolFormat = {
      name: openers[0] ?? "JSON",
      // No marker at all: the call is the whole answer (Llama 3.x).
      openers: openers.length > 0 ? openers : [""],
      call: { kind: "json-object", argumentsKeys: [...new Set([argumentsKey, "arguments", "parameters"])] },
      array,
      closers,
    };
    const opening = sectionPrefix + jsonCall[1]!;
    return {
      format,
      forced: { prefix: nlc.LlamaText(new nlc.SpecialTokensText(opening)), argumentsKey },
      description: `${openers.length > 0 ? `${openers.join(" ")} ` : ""}${array ? "[" : ""}{"name": …, "${argumentsKey}": {…}}${array ? ", …]" : ""}`,
    };
  }
  const opener = prefix.trim();
  if (!opener) return null;
  // A trigger that ends where the call's prefix begins opens the call with it ("<|channel|>commentary to=" +
  // "functions."), so the channel marker is not shown as the answer's text.
  const triggered = triggers.flatMap((trigger) => {
    for (let overlap = Math.min(trigger.length, prefix.length); overlap > 0; overlap--)
      if (trigger.endsWith(prefix.slice(0, overlap))) return [trigger + prefix.slice(overlap)];
    return [];
  });
  const openers = [...new Set([...triggered, opener, ...alternates])];
  return {
    format: { name: opener, openers, call: { kind: "name-then-json" }, array: false, closers },
    forced: null,
    description: `${opener}NAME${paramsPrefix.trim()}{…}`,
  };
}

/** The tools as node-llama-cpp's chat wrappers take them (the template's `tools`). */
export function functionsOf(tools: ToolDefinition[]): ChatModelFunctions {
  const functions: Record<string, { description?: string; params?: GbnfJsonSchema }> = {};
  for (const tool of tools) {
    functions[tool.name] = {
      ...(tool.description ? { description: tool.description } : {}),
      params: tool.parameters as GbnfJsonSchema,
    };
  }
  return functions;
}

/** A tool's result as the template should show it: JSON stays JSON, anything else is the text. */
function resultOf(content: string): unknown {
  try {
    const value = JSON.parse(content);
    return value !== null && typeof value === "object" ? value : content;
  } catch {
    return content;
  }
}

/**
 * The conversation as node-llama-cpp's history, with earlier calls as function-call items carrying their results
 * (matched by `tool_call_id`, else in order), so the template renders both in the model's own format. A tool
 * message that answers no call is shown as a user message, as the JSON path does.
 */
export function nativeHistory(messages: readonly ChatMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = [];
  for (let index = 0; index < messages.length; index++) {
    const message = messages[index]!;
    if (message.role === "system") history.push({ type: "system", text: message.content });
    else if (message.role === "user") history.push({ type: "user", text: message.content });
    else if (message.role === "assistant") {
      const response: (string | ChatModelFunctionCall)[] = message.content ? [message.content] : [];
      const calls = message.toolCalls ?? [];
      const results = new Map<number, string>();
      let next = index + 1;
      for (; next < messages.length && messages[next]!.role === "tool"; next++) {
        const result = messages[next]!;
        let slot = calls.findIndex((call, i) => !results.has(i) && call.id === result.toolCallId);
        if (slot === -1 && !result.toolCallId) slot = calls.findIndex((_, i) => !results.has(i));
        if (slot === -1) break;
        results.set(slot, result.content);
      }
      if (calls.length > 0) index = next - 1;
      calls.forEach((call, slot) => {
        response.push({
          type: "functionCall",
          name: call.name,
          params: parsedArguments(call.arguments),
          result: resultOf(results.get(slot) ?? ""),
          ...(slot === 0 ? { startsNewChunk: true } : {}),
        });
      });
      history.push({ type: "model", response });
    } else {
      history.push({
        type: "user",
        text: `Result of tool call${message.name ? ` ${message.name}` : ""}${message.toolCallId ? ` (${message.toolCallId})` : ""}: ${message.content}`,
      });
    }
  }
  history.push({ type: "model", response: [] });
  return history;
}

function parsedArguments(text: string): unknown {
  try {
    return JSON.parse(text || "{}");
  } catch {
    return text;
  }
}

/** Whether a conversation holds earlier tool calls or results (rendered natively even when no tools are offered). */
export function hasToolHistory(messages: readonly ChatMessage[]): boolean {
  return messages.some((message) => message.role === "tool" || (message.toolCalls?.length ?? 0) > 0);
}

/**
 * How a request's tools travel: "native" in the model's own format (tools offered, or earlier calls in the
 * conversation), "json" the system-message description with JSON calls (no native format, or a forced call the native
 * format cannot constrain), "none" without tools. `forced`: tool_choice required or named.
 */
export type ToolPlan = { mode: "native" | "json" | "none"; forced: boolean };

export function toolPlanFor(request: GenerateRequest, native: NativeTools | null | undefined): ToolPlan {
  if (request.kind !== "chat") return { mode: "none", forced: false };
  const offered = (request.tools?.length ?? 0) > 0 && request.toolChoice !== "none";
  const forced = forcesToolCall(request.tools, request.toolChoice);
  if (native && (!forced || native.forced) && (offered || hasToolHistory(request.messages)))
    return { mode: "native", forced };
  return { mode: offered ? "json" : "none", forced };
}

/**
 * The prompt for a chat with tools in the model's own format. With `forced`, the prompt ends with the text that opens
 * a call, so the answer is the call's JSON object (which the grammar then writes).
 */
export function nativePrompt(
  native: NativeTools,
  messages: readonly ChatMessage[],
  tools: ToolDefinition[] | undefined,
  offerTools: boolean,
  forced: boolean,
): { contextText: LlamaText; stopGenerationTriggers: LlamaText[] } {
  const state = native.wrapper.generateContextState({
    chatHistory: nativeHistory(messages),
    ...(offerTools && tools && tools.length > 0 ? { availableFunctions: functionsOf(tools) } : {}),
  });
  const rendered = native.promptEnd ? native.promptEnd(state.contextText) : state.contextText;
  const contextText = forced && native.forced ? rendered.concat(native.forced.prefix) : rendered;
  return { contextText, stopGenerationTriggers: state.stopGenerationTriggers };
}
