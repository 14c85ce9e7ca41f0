import type { Context, Handler } from "hono";
import {
  type ChatEvent,
  type FoldedAnswer,
  foldChatEvents,
  type GenerateRequest,
  type Truncation,
} from "../core/chat.js";
import type { Gateway } from "../gateway/gateway.js";
import type { AppEnv } from "./appEnv.js";
import { primeStream } from "./stream.js";
import { truncationHeaders, truncationOf } from "./truncation.js";

/** A request body decoded: the core request, and headers every answer to it carries (Ollama's option notes). */
export interface Decoded<Request extends GenerateRequest = GenerateRequest> {
  request: Request;
  headers?: Record<string, string>;
}

/** How one request's answer is written, made per request (its id, its clock): folded whole, or streamed. */
export interface AnswerEncoder<Event> {
  /** Folds the events into the API's whole answer; an error event is thrown (errorResponse.ts answers it). */
  whole(events: AsyncIterable<Event>): Promise<{ body: object; truncation?: Truncation | undefined }>;
  /** The API's stream body; `inputTokens` when the codec asked for the prompt to be counted. */
  stream(events: AsyncIterator<Event>, prompt: { inputTokens?: number }): ReadableStream<Uint8Array>;
}

/** What an API says about one of its generating routes; generateRoute does the rest. */
export interface GenerateCodec<
  Body,
  Event extends { type: string } = ChatEvent,
  Request extends GenerateRequest = GenerateRequest,
> {
  /** The body, validated (a 400 naming the field otherwise). */
  parse(json: unknown): Body;
  streams(body: Body): boolean;
  encoder(body: Body): AnswerEncoder<Event>;
  decode(body: Body, c: Context<AppEnv>): Decoded<Request> | Promise<Decoded<Request>>;
  /** The gateway call: `generatedBy(gateway)` for most; the Responses API may attach MCP tools. */
  events(request: Request, body: Body, c: Context<AppEnv>): AsyncIterable<Event>;
  /** The stream's content type and framing headers (SSE or NDJSON). */
  streamHeaders: Readonly<Record<string, string>>;
  /** Count the prompt beside the first token, for a stream whose first frame reports it (Anthropic's). */
  countsPrompt?: (request: Request, c: Context<AppEnv>) => Promise<number>;
  /** An answer without generating (Ollama's empty prompt loads or unloads the model); undefined to generate. */
  shortcut?(body: Body, c: Context<AppEnv>): Promise<Response | undefined>;
}

/** The gateway's plain generation for a request, with its context and abort signal. */
export function generatedBy(gateway: Gateway) {
  return <Body>(request: GenerateRequest, _body: Body, c: Context<AppEnv>): AsyncIterable<ChatEvent> =>
    gateway.generate(request, c.get("context"), c.get("signal"));
}

/** A whole answer from a chat stream: folded (foldChatEvents), then shaped by `encode`. */
export function foldedWith(encode: (answer: FoldedAnswer) => object): AnswerEncoder<ChatEvent>["whole"] {
  return async (events) => {
    const answer = await foldChatEvents(events);
    return { body: encode(answer), truncation: answer.truncation };
  };
}

/**
 * Starts the stream before any header is sent, so a failure before the first event (unknown model, prompt too long,
 * a full queue) is an ordinary error answer with its status; with `count`, counts the prompt at the same time.
 */
async function startStream<Event>(
  events: AsyncIterable<Event>,
  count: (() => Promise<number>) | undefined,
): Promise<{ iterator: AsyncIterator<Event> & { first: Event | undefined }; inputTokens?: number }> {
  if (!count) return { iterator: await primeStream(events) };
  const [primed, counted] = await Promise.allSettled([primeStream(events), count()]);
  if (primed.status === "rejected") throw primed.reason;
  if (counted.status === "rejected") {
    await primed.value.return?.();
    throw counted.reason;
  }
  return { iterator: primed.value, inputTokens: counted.value };
}

/** The one handler of every generating route: decode → gateway → stream or fold → encode. */
export function generateRoute<Body, Event extends { type: string }, Request extends GenerateRequest>(
  codec: GenerateCodec<Body, Event, Request>,
): Handler<AppEnv> {
  return async (c) => {
    const body = codec.parse(await c.get("json")());
    const encoder = codec.encoder(body);
    const early = await codec.shortcut?.(body, c);
    if (early) return early;
    const { request, headers = {} } = await codec.decode(body, c);
    const events = codec.events(request, body, c);
    if (!codec.streams(body)) {
      const answer = await encoder.whole(events);
      return c.json(answer.body, 200, { ...headers, ...truncationHeaders(answer.truncation) });
    }
    const count = codec.countsPrompt;
    const { iterator, inputTokens } = await startStream(events, count && (() => count(request, c)));
    return new Response(encoder.stream(iterator, inputTokens === undefined ? {} : { inputTokens }), {
      headers: { ...codec.streamHeaders, ...headers, ...truncationHeaders(truncationOf(iterator.first)) },
    });
  };
}
