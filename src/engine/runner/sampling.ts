/**
 * The sampling stage: a request's sampling options → node-llama-cpp's evaluation options, and the grammar that
 * enforces structured output or a forced tool call.
 */
import type { Llama, LlamaGrammar, LlamaGrammarEvaluationState, Token } from "node-llama-cpp";
import type { GenerateRequest, ResponseFormat, SamplingOptions } from "../../core/chat.js";
import { forcesToolCall, toolCallSchema } from "../../core/tools.js";
import { requestError } from "./errors.js";

/** The options of node-llama-cpp's `sequence.evaluate` that sampling sets. */
export interface EvaluateOptions {
  temperature: number;
  topK?: number;
  topP?: number;
  minP?: number;
  seed?: number;
  repeatPenalty?: {
    punishTokens: () => Token[];
    maxPunishTokens: number;
    penalty: number;
    presencePenalty: number;
    frequencyPenalty: number;
  };
  /** The loop sees end-of-generation tokens itself (to honour ignoreEos and tell "stop" from "length"). */
  yieldEogToken: true;
  grammarEvaluationState?: LlamaGrammarEvaluationState;
}

/**
 * `generated`: the tokens generated so far (the penalties look at its last `repeatLastN`, read at each step).
 * Left-out options keep llama.cpp's defaults; temperature defaults to 0.8 as in llama.cpp and Ollama.
 */
export function evaluateOptions(
  sampling: SamplingOptions,
  generated: readonly Token[],
  grammarEvaluationState?: LlamaGrammarEvaluationState,
): EvaluateOptions {
  const penalize =
    (sampling.repeatPenalty ?? 1) !== 1 ||
    (sampling.presencePenalty ?? 0) !== 0 ||
    (sampling.frequencyPenalty ?? 0) !== 0;
  const lastN = sampling.repeatLastN ?? 64;
  return {
    temperature: sampling.temperature ?? 0.8,
    ...(sampling.topK !== undefined ? { topK: sampling.topK } : {}),
    ...(sampling.topP !== undefined ? { topP: sampling.topP } : {}),
    ...(sampling.minP !== undefined ? { minP: sampling.minP } : {}),
    ...(sampling.seed !== undefined ? { seed: sampling.seed } : {}),
    ...(penalize
      ? {
          repeatPenalty: {
            punishTokens: () => generated.slice(-lastN),
            maxPunishTokens: lastN,
            penalty: sampling.repeatPenalty ?? 1,
            presencePenalty: sampling.presencePenalty ?? 0,
            frequencyPenalty: sampling.frequencyPenalty ?? 0,
          },
        }
      : {}),
    yieldEogToken: true,
    ...(grammarEvaluationState ? { grammarEvaluationState } : {}),
  };
}

/** The structured output a request needs enforced: a forced tool call's schema, or its response format. */
export function grammarFormat(request: GenerateRequest): ResponseFormat | undefined {
  if (request.kind === "chat" && forcesToolCall(request.tools, request.toolChoice))
    return { type: "json-schema", schema: toolCallSchema(request.tools ?? [], request.toolChoice ?? "required") };
  return request.responseFormat;
}

/** Grammars compile once per distinct schema; a few dozen cover any real workload. */
export class GrammarCache {
  private readonly grammars = new Map<string, Promise<LlamaGrammar>>();
  constructor(
    private readonly llama: Pick<Llama, "getGrammarFor" | "createGrammarForJsonSchema">,
    private readonly limit = 32,
  ) {}

  /** The grammar for a format (none for text); a schema that cannot become one is a 400 on response_format. */
  async grammarFor(format: ResponseFormat | undefined): Promise<LlamaGrammar | undefined> {
    if (!format || format.type === "text") return undefined;
    try {
      return await this.compiled(format);
    } catch (error) {
      throw requestError(
        `the JSON schema cannot be turned into a grammar: ${(error as Error).message.split("\n")[0]}`,
        "invalid_schema",
        400,
        "response_format",
      );
    }
  }

  private compiled(format: Exclude<ResponseFormat, { type: "text" }>): Promise<LlamaGrammar> {
    const key = format.type === "json" ? "json" : JSON.stringify(format.schema);
    let grammar = this.grammars.get(key);
    if (!grammar) {
      grammar =
        format.type === "json"
          ? this.llama.getGrammarFor("json")
          : this.llama.createGrammarForJsonSchema(format.schema as Parameters<Llama["createGrammarForJsonSchema"]>[0]);
      grammar.catch(() => this.grammars.delete(key));
      if (this.grammars.size >= this.limit) this.grammars.delete(this.grammars.keys().next().value!);
      this.grammars.set(key, grammar);
    }
    return grammar;
  }
}
