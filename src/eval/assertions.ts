import type { ChatRequest } from "../core/chat.js";
import { checkJsonSchema } from "./jsonSchemaCheck.js";
import { agreementRequest, rubricRequest, type Verdict } from "./judge.js";
import type { Assertion, EvalCase } from "./suite.js";

/** One assertion's outcome on one answer. */
export interface AssertionResult {
  type: Assertion["type"];
  pass: boolean;
  /** similar: the cosine similarity. */
  score?: number;
  /** Why it failed (or what the judge said). */
  detail?: string;
}

export interface AnswerFacts {
  text: string;
  completionTokens: number;
  durationMs: number;
}

/** What model-graded assertions need; the runner provides them (with answers kept for resume). */
export interface Graders {
  /** Asks a judge model; the verdict always parses (structured output) or this throws. */
  verdict(request: ChatRequest): Promise<Verdict>;
  embed(model: string, texts: string[]): Promise<number[][]>;
  /** The reference model's answer to this case. */
  referenceAnswer(model: string, item: EvalCase): Promise<string>;
}

export interface GraderDefaults {
  judge?: string;
  embeddingModel?: string;
  reference?: string;
}

export function cosine(a: readonly number[], b: readonly number[]): number {
  let dot = 0;
  let normA = 0;
  let normB = 0;
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    dot += a[i]! * b[i]!;
    normA += a[i]! * a[i]!;
    normB += b[i]! * b[i]!;
  }
  return normA === 0 || normB === 0 ? 0 : dot / Math.sqrt(normA * normB);
}

function quote(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text);
}

function containment(text: string, values: string | string[], match: "any" | "all", fold: boolean): AssertionResult {
  const list = Array.isArray(values) ? values : [values];
  const haystack = fold ? text.toLowerCase() : text;
  const found = list.filter((value) => haystack.includes(fold ? value.toLowerCase() : value));
  const pass = match === "all" ? found.length === list.length : found.length > 0;
  const missing = list.filter((value) => !found.includes(value));
  return {
    type: fold ? "icontains" : "contains",
    pass,
    ...(pass ? {} : { detail: `missing ${missing.map(quote).join(", ")}` }),
  };
}

function result(type: Assertion["type"], pass: boolean, failure: string): AssertionResult {
  return pass ? { type, pass } : { type, pass, detail: failure };
}

/** Scores one answer against one assertion. Model-graded ones call the graders. */
export async function evaluateAssertion(
  assertion: Assertion,
  answer: AnswerFacts,
  item: EvalCase,
  graders: Graders,
  defaults: GraderDefaults,
): Promise<AssertionResult> {
  const text = answer.text;
  switch (assertion.type) {
    case "equals":
      return result("equals", text.trim() === assertion.value.trim(), `expected ${quote(assertion.value)}`);
    case "contains":
      return containment(text, assertion.value, assertion.match, false);
    case "icontains":
      return containment(text, assertion.value, assertion.match, true);
    case "starts-with":
      return result(
        "starts-with",
        text.trimStart().startsWith(assertion.value),
        `does not start with ${quote(assertion.value)}`,
      );
    case "regex":
      return result(
        "regex",
        new RegExp(assertion.value, assertion.flags).test(text),
        `does not match /${assertion.value}/`,
      );
    case "is-json": {
      try {
        JSON.parse(text);
        return { type: "is-json", pass: true };
      } catch {
        return { type: "is-json", pass: false, detail: "not valid JSON" };
      }
    }
    case "json-schema": {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        return { type: "json-schema", pass: false, detail: "not valid JSON" };
      }
      const problem = checkJsonSchema(value, assertion.value);
      return problem ? { type: "json-schema", pass: false, detail: problem } : { type: "json-schema", pass: true };
    }
    case "max-tokens":
      return result(
        "max-tokens",
        answer.completionTokens <= assertion.value,
        `${answer.completionTokens} tokens > ${assertion.value}`,
      );
    case "latency-ms":
      return result(
        "latency-ms",
        answer.durationMs <= assertion.value,
        `${Math.round(answer.durationMs)} ms > ${assertion.value}`,
      );
    case "similar": {
      const model = assertion.model ?? defaults.embeddingModel!;
      const [a, b] = await graders.embed(model, [text, assertion.value]);
      const score = cosine(a ?? [], b ?? []);
      const pass = score >= assertion.threshold;
      return {
        type: "similar",
        pass,
        score,
        ...(pass ? {} : { detail: `similarity ${score.toFixed(3)} < ${assertion.threshold}` }),
      };
    }
    case "judge": {
      const verdict = await graders.verdict(
        rubricRequest(assertion.model ?? defaults.judge!, item, text, assertion.rubric),
      );
      return { type: "judge", pass: verdict.pass, ...(verdict.reason ? { detail: verdict.reason } : {}) };
    }
    case "agrees-with": {
      const reference =
        assertion.reference ?? (await graders.referenceAnswer(assertion.model ?? defaults.reference!, item));
      const verdict = await graders.verdict(
        agreementRequest(assertion.judge ?? defaults.judge!, item, text, reference),
      );
      return { type: "agrees-with", pass: verdict.pass, ...(verdict.reason ? { detail: verdict.reason } : {}) };
    }
    default:
      return assertion satisfies never;
  }
}
