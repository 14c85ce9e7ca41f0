import { createHash } from "node:crypto";
import type { EvalRows } from "../control/evalRows.js";
import type { GenerateRequest } from "../core/chat.js";
import type { CaseOptions, EvalCase, Suite } from "./suite.js";

export interface LedgerSuiteOptions {
  /** The model name clients asked for (a route such as `smart`). */
  route: string;
  sinceMs: number;
  sample: number;
  judge: string;
  /** A rubric every answer is also judged against; none: agreement only. */
  rubric?: string;
  threshold: number;
}

function optionsOf(request: GenerateRequest): CaseOptions {
  const { sampling, limits, responseFormat } = request;
  return {
    ...(sampling.temperature !== undefined ? { temperature: sampling.temperature } : {}),
    ...(sampling.topP !== undefined ? { top_p: sampling.topP } : {}),
    ...(sampling.topK !== undefined ? { top_k: sampling.topK } : {}),
    ...(sampling.seed !== undefined ? { seed: sampling.seed } : {}),
    ...(limits?.maxTokens !== undefined ? { max_tokens: limits.maxTokens } : {}),
    ...(limits?.stop?.length ? { stop: limits.stop } : {}),
    ...(responseFormat?.type === "json"
      ? { response_format: "json" as const }
      : responseFormat?.type === "json-schema"
        ? { response_format: { json_schema: responseFormat.schema } }
        : {}),
  };
}

/**
 * A suite from traffic the ledger kept content for (keys with store_content): the requests clients sent to `route`,
 * a deterministic sample of them, each with the answer the route gave as the reference (`agrees-with`) and, when a
 * rubric is given, a `judge` check. Requests with tools are left out (their answers are calls, not text).
 */
export async function suiteFromLedger(
  store: Pick<EvalRows, "content">,
  options: LedgerSuiteOptions,
): Promise<{ suite: Suite; found: number; skipped: number }> {
  const rows = await store.content(options.sinceMs);
  let skipped = 0;
  const usable: { id: string; time: number; request: GenerateRequest; response: string }[] = [];
  for (const row of rows) {
    let request: GenerateRequest;
    try {
      request = JSON.parse(row.request) as GenerateRequest;
    } catch {
      skipped++;
      continue;
    }
    if (request.model !== options.route) continue;
    const toolUse =
      request.kind === "chat" &&
      (Boolean(request.tools?.length) ||
        request.messages.some((message) => message.role === "tool" || message.toolCalls?.length));
    if (toolUse || (request.kind === "completion" && typeof request.prompt !== "string") || row.response === "") {
      skipped++;
      continue;
    }
    usable.push({ id: row.request_id, time: Number(row.time_ms), request, response: row.response });
  }
  // A deterministic sample: the same ledger and options give the same suite (and so a resumable run).
  const rank = (id: string) => createHash("sha256").update(id).digest("hex");
  const chosen = usable
    .sort((a, b) => rank(a.id).localeCompare(rank(b.id)))
    .slice(0, options.sample)
    .sort((a, b) => a.time - b.time || a.id.localeCompare(b.id));
  const cases = chosen.map((entry): EvalCase => {
    const request = entry.request;
    return {
      id: `req-${entry.id.replace(/[^\w.:-]/g, "").slice(-24)}`,
      ...(request.kind === "chat"
        ? {
            messages: request.messages.map((message) => ({
              role: message.role as "system" | "user" | "assistant",
              content: message.content,
            })),
          }
        : { prompt: request.prompt as string }),
      options: optionsOf(request),
      assert: [
        { type: "agrees-with", reference: entry.response, judge: options.judge },
        ...(options.rubric ? [{ type: "judge" as const, rubric: options.rubric, model: options.judge }] : []),
      ],
    };
  });
  return {
    suite: {
      name: `${options.route} replay`,
      threshold: options.threshold,
      repeat: 1,
      judge: options.judge,
      cases,
    },
    found: usable.length,
    skipped,
  };
}
