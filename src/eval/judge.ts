import type { ChatRequest } from "../core/chat.js";

/** What a judge must answer: grammar-enforced on local models, a JSON schema response_format on remote ones. */
export const verdictSchema = {
  type: "object",
  properties: {
    reason: { type: "string", maxLength: 300 },
    pass: { type: "boolean" },
  },
  required: ["reason", "pass"],
  additionalProperties: false,
} as const;

export interface Verdict {
  pass: boolean;
  reason: string;
}

function conversation(request: { messages?: { role: string; content: string }[]; prompt?: string }): string {
  if (request.prompt !== undefined) return `Complete this text:\n${request.prompt}`;
  return (request.messages ?? []).map((message) => `${message.role.toUpperCase()}: ${message.content}`).join("\n\n");
}

const system =
  'You grade answers strictly and briefly. Reply with JSON only: {"reason": "<one sentence>", "pass": true|false}.';

/** The request that asks a judge whether `answer` meets `rubric`. */
export function rubricRequest(
  judge: string,
  input: { messages?: { role: string; content: string }[]; prompt?: string },
  answer: string,
  rubric: string,
): ChatRequest {
  return judgeRequest(
    judge,
    `Request:\n${conversation(input)}\n\nAnswer:\n${answer}\n\nRubric:\n${rubric}\n\nDoes the answer meet the rubric?`,
  );
}

/** The request that asks a judge whether `answer` agrees with `reference` (the same content, not the same words). */
export function agreementRequest(
  judge: string,
  input: { messages?: { role: string; content: string }[]; prompt?: string },
  answer: string,
  reference: string,
): ChatRequest {
  return judgeRequest(
    judge,
    `Request:\n${conversation(input)}\n\nReference answer:\n${reference}\n\nCandidate answer:\n${answer}\n\nDoes the candidate answer say the same thing as the reference (facts and conclusion; wording may differ) and is it at least as useful?`,
  );
}

function judgeRequest(judge: string, content: string): ChatRequest {
  return {
    kind: "chat",
    model: judge,
    messages: [
      { role: "system", content: system },
      { role: "user", content },
    ],
    sampling: { temperature: 0 },
    limits: { maxTokens: 200 },
    responseFormat: { type: "json-schema", name: "verdict", schema: { ...verdictSchema } },
  };
}

/** Parses a judge's answer; a judge that ignored the format is an error naming the judge and what it said. */
export function parseVerdict(judge: string, text: string): Verdict {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`the judge ${judge} did not answer with JSON: ${JSON.stringify(text.slice(0, 120))}`);
  }
  const record = value as Record<string, unknown>;
  if (typeof record?.pass !== "boolean")
    throw new Error(`the judge ${judge} answered without a boolean "pass": ${JSON.stringify(text.slice(0, 120))}`);
  return { pass: record.pass, reason: typeof record.reason === "string" ? record.reason : "" };
}
