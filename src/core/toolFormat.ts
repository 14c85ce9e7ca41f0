import type { ToolDefinition } from "./chat.js";
import { MAX_PARALLEL_CALLS } from "./tools.js";

/**
 * A model family's own way of writing tool calls, as plain text (special tokens spelled out, as the detokenizer
 * writes them with special tokens on). The engine derives one from the model's chat template; this module only
 * reads what a model wrote, so it stays free of any model library.
 *
 * Two shapes cover the families we know:
 * - `json-object`: the call is a JSON object holding the name and the arguments — Llama 3.x `{"name": …,
 *   "parameters": {…}}`, Qwen/Hermes `<tool_call>\n{"name": …, "arguments": {…}}\n</tool_call>`, Mistral
 *   `[TOOL_CALLS][{"name": …, "arguments": {…}}, …]` (an `array` section).
 * - `name-then-json`: a marker, the name, then the arguments object — Llama 3.1's `<function=NAME>{…}</function>`,
 *   gpt-oss (Harmony) `to=functions.NAME<|constrain|>json<|message|>{…}<|call|>`, Functionary v3.2
 *   `>>>NAME\n{…}` (whose plain text is a segment addressed to `all`: `>>>all\n…`).
 *
 * And Llama 3.1's built-in tool syntax after `<|python_tag|>` (`builtinOpener`): `NAME.call(arg="value", …)`, or
 * raw code for a `python` / `code_interpreter` tool, besides the JSON object it may also write there.
 */
export interface NativeToolFormat {
  /** What docs and `/api/show` call it: "qwen", "llama3", "mistral", "harmony", … */
  name: string;
  /**
   * Markers that open a call, or a section of calls (Mistral's `[TOOL_CALLS]`). The empty string means the call is
   * the whole answer and starts it (Llama 3.x writes bare JSON): then only an answer that opens with `{` is a call.
   */
  openers: string[];
  call: { kind: "json-object"; argumentsKeys: string[] } | { kind: "name-then-json" };
  /** The calls of a section are one JSON array (Mistral). */
  array: boolean;
  /** Text that may follow a call or sit between calls and means nothing: closers, separators, end markers. */
  closers: string[];
  /**
   * Markers that introduce plain text and are not part of it (Functionary's `>>>all\n`): dropped from the answer.
   * A marker that starts with an opener wins over the opener where both match.
   */
  textMarkers?: string[];
  /**
   * What the prompt ends with that belongs to the model's first segment (Functionary's generation prompt ends with
   * `>>>`, so the model writes `all\n…` or `NAME\n{…}`): the answer is read as if it began with it.
   */
  answerPrefix?: string;
  /** Llama 3.1's `<|python_tag|>`: an opener after which a built-in call or raw code may come (see above). */
  builtinOpener?: string;
}

/** The tools that take raw code after Llama 3.1's `<|python_tag|>` (llama.cpp reads it as `python`), in order. */
const CODE_TOOLS = ["python", "code_interpreter"];

export interface ParsedToolCall {
  name: string;
  /** The arguments as a JSON object text (what OpenAI's `function.arguments` carries). */
  arguments: string;
}

/** The longest stretch between a call's name and its arguments' `{` (Harmony: ` <|constrain|>json<|message|>`). */
const MAX_NAME_TO_ARGUMENTS = 48;

/**
 * Reads a streamed answer in a native tool format: text before a call is released as it comes (holding back only
 * what could be the start of an opener), everything from the first opener on is held, and `finish` turns it into
 * calls, or gives it back as text when it is not entirely calls to the offered tools (as the JSON path does).
 */
export class NativeToolCallParser {
  private held = "";
  /** The held text's pieces as fed (length in `held`, and what of it the client may see). */
  private pieces: { length: number; visible: string }[] = [];
  private inCalls: boolean;
  private sawText = false;

  /** `startInCall`: the prompt already ends with the opener (a forced call), so the answer starts inside a call. */
  constructor(
    private readonly format: NativeToolFormat,
    private readonly tools: ToolDefinition[],
    private readonly parallel: boolean,
    startInCall = false,
  ) {
    this.inCalls = startInCall;
    // The prompt's end that opens the first segment is read as written, never shown.
    if (format.answerPrefix) {
      this.held = format.answerPrefix;
      this.pieces.push({ length: format.answerPrefix.length, visible: "" });
    }
  }

  /** Whether a call section has begun (everything from here on is held until `finish`). */
  get calling(): boolean {
    return this.inCalls;
  }

  /**
   * Feeds one token's text; returns the text that is surely not part of a call. `visible` is what the client may see
   * of it: a special token (gpt-oss's `<|channel|>`) is matched as written but never shown.
   */
  push(text: string, visible = text): string {
    this.held += text;
    this.pieces.push({ length: text.length, visible });
    if (this.inCalls) return "";
    const bare = this.format.openers.includes("");
    if (bare && !this.sawText) {
      const start = this.held.trimStart();
      if (start.length === 0) return "";
      if (start.startsWith("{") || (this.format.array && start.startsWith("["))) {
        this.inCalls = true;
        return "";
      }
    }
    const openers = this.format.openers.filter((opener) => opener !== "");
    const markers = this.format.textMarkers ?? [];
    let out = "";
    for (;;) {
      let first = -1;
      let marker = "";
      for (const opener of openers) {
        const index = this.held.indexOf(opener);
        if (index !== -1 && (first === -1 || index < first)) first = index;
      }
      for (const candidate of markers) {
        const index = this.held.indexOf(candidate);
        if (index !== -1 && (first === -1 || index <= first)) {
          first = index;
          marker = candidate;
        }
      }
      if (first === -1) break;
      if (marker) {
        // Plain text follows: what comes before goes out, the marker itself is dropped.
        const before = this.release(first);
        if (before.trim()) this.sawText = true;
        out += before;
        this.release(marker.length);
        continue;
      }
      // An opener that may still grow into a text marker (`>>>al…`) is held until it tells which it is.
      const rest = this.held.slice(first);
      if (markers.some((candidate) => candidate.startsWith(rest))) {
        if (first > 0 && this.held.slice(0, first).trim()) this.sawText = true;
        return out + this.release(first);
      }
      this.inCalls = true;
      if (first > 0 || out.trim()) this.sawText = true;
      return out + this.release(first);
    }
    // Hold back the longest tail that could still grow into an opener or a text marker.
    let keep = 0;
    for (const opener of [...openers, ...markers]) {
      for (let length = Math.min(opener.length - 1, this.held.length); length > keep; length--) {
        if (this.held.endsWith(opener.slice(0, length))) {
          keep = length;
          break;
        }
      }
    }
    if (this.held.slice(0, this.held.length - keep).trim()) this.sawText = true;
    return out + this.release(this.held.length - keep);
  }

  /** Lets go of the first `length` characters held: the visible text they carry. */
  private release(length: number): string {
    this.held = this.held.slice(length);
    let visible = "";
    let left = length;
    while (left > 0 && this.pieces.length > 0) {
      const piece = this.pieces[0]!;
      if (piece.length <= left) {
        visible += piece.visible;
        left -= piece.length;
        this.pieces.shift();
        continue;
      }
      // A piece split by an opener: plain text splits as it is; a special token's text is never shown in part.
      const plain = piece.visible.length === piece.length;
      if (plain) visible += piece.visible.slice(0, left);
      this.pieces[0] = { length: piece.length - left, visible: plain ? piece.visible.slice(left) : "" };
      left = 0;
    }
    return visible;
  }

  /** Ends the answer: the calls it held, or null with the held text to send as text. */
  finish(): { calls: ParsedToolCall[] } | { calls: null; text: string } {
    const held = this.held;
    const calls = this.inCalls ? parseNativeToolCalls(held, this.format, this.tools) : null;
    if (!calls || (!this.parallel && calls.length > 1) || calls.length > MAX_PARALLEL_CALLS)
      return { calls: null, text: withoutMarkers(this.release(held.length), this.format) };
    this.release(held.length);
    return { calls };
  }
}

/** Text given back from a held section, without the markers that only address it (Functionary's `>>>all\n`). */
function withoutMarkers(text: string, format: NativeToolFormat): string {
  let out = text;
  for (const marker of format.textMarkers ?? []) out = out.split(marker).join("");
  return out;
}

/**
 * Reads a call section written in `format`: calls, each optionally after an opener, separated and followed only by
 * closers and whitespace. Null when anything else is there or a call names a tool that was not offered.
 */
export function parseNativeToolCalls(
  text: string,
  format: NativeToolFormat,
  tools: ToolDefinition[],
): ParsedToolCall[] | null {
  const calls: ParsedToolCall[] = [];
  const openers = format.openers.filter((opener) => opener !== "").sort((a, b) => b.length - a.length);
  const closers = [...format.closers, ","].filter(Boolean).sort((a, b) => b.length - a.length);
  let at = 0;
  const skipSeparators = () => {
    for (;;) {
      while (at < text.length && /\s/.test(text[at]!)) at++;
      const closer = closers.find((candidate) => text.startsWith(candidate, at));
      if (!closer) return;
      at += closer.length;
    }
  };
  for (;;) {
    skipSeparators();
    if (at >= text.length) break;
    const opener = openers.find((candidate) => text.startsWith(candidate, at));
    if (opener) {
      at += opener.length;
      if (opener === format.builtinOpener) {
        while (at < text.length && /\s/.test(text[at]!)) at++;
        if (text[at] !== "{") {
          // Llama 3.1's built-in syntax: one call, then only closers.
          const builtin = readBuiltinCall(text, at, tools);
          if (!builtin) return null;
          calls.push(builtin.call);
          at = builtin.end;
          continue;
        }
      }
    } else if (format.call.kind === "name-then-json" || !(text[at] === "{" || text[at] === "[")) {
      // What is left is no call: fine if it is only the start of a closer the end-of-turn token cut short.
      const rest = text.slice(at).trim();
      if (closers.some((closer) => closer.startsWith(rest))) break;
      return null;
    }
    while (at < text.length && /\s/.test(text[at]!)) at++;
    if (format.call.kind === "json-object") {
      const value = readJsonValue(text, at);
      if (!value) return null;
      at = value.end;
      const items = Array.isArray(value.value) ? value.value : [value.value];
      if (items.length === 0) return null;
      for (const item of items) {
        const call = jsonObjectCall(item, format.call.argumentsKeys, tools);
        if (!call) return null;
        calls.push(call);
      }
    } else {
      const name = /^[A-Za-z0-9_.:-]+/.exec(text.slice(at))?.[0];
      if (!name) return null;
      at += name.length;
      const brace = text.indexOf("{", at);
      if (brace === -1 || brace - at > MAX_NAME_TO_ARGUMENTS) return null;
      const value = readJsonValue(text, brace);
      if (!value) return null;
      at = value.end;
      const call = callFrom(name, value.value, tools);
      if (!call) return null;
      calls.push(call);
    }
  }
  return calls.length > 0 ? calls : null;
}

/**
 * Llama 3.1's built-in call after `<|python_tag|>`: `NAME.call(arg=JSON, …)` for an offered tool NAME (arguments
 * as an object, llama.cpp's reading), else the rest of the text as `{"code": …}` for an offered `python` or
 * `code_interpreter` tool. Null when neither fits.
 */
function readBuiltinCall(
  text: string,
  start: number,
  tools: ToolDefinition[],
): { call: ParsedToolCall; end: number } | null {
  const head = /^([A-Za-z_][\w]*)\s*\.\s*call\s*\(/.exec(text.slice(start));
  if (head && tools.some((tool) => tool.name === head[1])) {
    let at = start + head[0].length;
    const args: Record<string, unknown> = {};
    for (;;) {
      while (at < text.length && /\s/.test(text[at]!)) at++;
      if (text[at] === ")") return { call: { name: head[1]!, arguments: JSON.stringify(args) }, end: at + 1 };
      const name = /^([A-Za-z_]\w*)\s*=\s*/.exec(text.slice(at));
      if (!name) return null;
      at += name[0].length;
      const value = readAnyJsonValue(text, at);
      if (!value) return null;
      args[name[1]!] = value.value;
      at = value.end;
      while (at < text.length && /\s/.test(text[at]!)) at++;
      if (text[at] === ",") at++;
      else if (text[at] !== ")") return null;
    }
  }
  const codeTool = CODE_TOOLS.find((name) => tools.some((tool) => tool.name === name));
  const code = text.slice(start).trimEnd();
  if (!codeTool || !code) return null;
  return { call: { name: codeTool, arguments: JSON.stringify({ code }) }, end: text.length };
}

/** One JSON value of any kind at `start` (a string, number, literal, object or array): its value and end. */
function readAnyJsonValue(text: string, start: number): { value: unknown; end: number } | null {
  const nested = readJsonValue(text, start);
  if (nested) return nested;
  const scalar = /^(?:"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(start));
  if (!scalar) return null;
  try {
    return { value: JSON.parse(scalar[0]), end: start + scalar[0].length };
  } catch {
    return null;
  }
}

function jsonObjectCall(value: unknown, argumentsKeys: string[], tools: ToolDefinition[]): ParsedToolCall | null {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return null;
  const record = value as Record<string, unknown>;
  if (typeof record.name !== "string") return null;
  const key = argumentsKeys.find((candidate) => candidate in record);
  return callFrom(record.name, key === undefined ? {} : record[key], tools);
}

function callFrom(name: string, args: unknown, tools: ToolDefinition[]): ParsedToolCall | null {
  if (!tools.some((tool) => tool.name === name)) return null;
  let value = args;
  // Some models write the arguments as a JSON string (what the OpenAI wire format does).
  if (typeof value === "string") {
    try {
      value = JSON.parse(value);
    } catch {
      return null;
    }
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) return null;
  return { name, arguments: JSON.stringify(value) };
}

/** Reads one JSON object or array starting at `start`: its value and where it ends; null if it is not one. */
function readJsonValue(text: string, start: number): { value: unknown; end: number } | null {
  const open = text[start];
  if (open !== "{" && open !== "[") return null;
  let depth = 0;
  let inString = false;
  let escaped = false;
  for (let i = start; i < text.length; i++) {
    const char = text[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (char === "\\") escaped = true;
      else if (char === '"') inString = false;
      continue;
    }
    if (char === '"') inString = true;
    else if (char === "{" || char === "[") depth++;
    else if (char === "}" || char === "]") {
      depth--;
      if (depth === 0) {
        try {
          return { value: JSON.parse(text.slice(start, i + 1)), end: i + 1 };
        } catch {
          return null;
        }
      }
    }
  }
  return null;
}
