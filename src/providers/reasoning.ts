import {
  type GenerateRequest,
  REASONING_EFFORT_BUDGETS,
  type ReasoningEffort,
  type ReasoningOptions,
} from "../core/chat.js";
import { InvalidRequestError } from "../core/errors.js";

/**
 * A client's reasoning budget as each remote API takes it (docs/reasoning.md, "Routes to remote providers"). Every
 * value sent is one of a fixed set of levels or a number, never client text.
 */

/** The smallest named level whose budget covers `budget` tokens (the largest level when none does). */
export function effortForBudget(budget: number): ReasoningEffort {
  const levels = Object.entries(REASONING_EFFORT_BUDGETS) as [ReasoningEffort, number][];
  return levels.find(([, tokens]) => tokens >= budget)?.[0] ?? "high";
}

/**
 * OpenAI's `reasoning_effort`: the level the client named; a token budget (Anthropic's budget_tokens) as the
 * smallest level that covers it. Nothing when the client said nothing, or asked to reason with no budget (the
 * upstream's default).
 */
export function openAIReasoningEffort(reasoning: ReasoningOptions | undefined): ReasoningEffort | undefined {
  if (!reasoning) return undefined;
  if (reasoning.effort) return reasoning.effort;
  return reasoning.budgetTokens === undefined ? undefined : effortForBudget(reasoning.budgetTokens);
}

/** Anthropic's smallest thinking budget (its API refuses less). */
export const ANTHROPIC_MIN_THINKING_BUDGET = 1024;

/**
 * Anthropic's `thinking`: a budget of 0 is `disabled`; any other budget is `enabled` with budget_tokens raised to
 * Anthropic's minimum of 1024 (a budget cannot be lowered there), which must stay below max_tokens (Anthropic's rule,
 * refused here naming the field rather than by the upstream). No budget: nothing is sent (the upstream's default).
 */
export function anthropicThinking(
  reasoning: ReasoningOptions | undefined,
  maxTokens: number,
  provider: string,
): Record<string, unknown> | undefined {
  if (reasoning?.budgetTokens === undefined) return undefined;
  if (reasoning.budgetTokens === 0) return { type: "disabled" };
  const budget = Math.max(ANTHROPIC_MIN_THINKING_BUDGET, reasoning.budgetTokens);
  if (budget >= maxTokens)
    throw new InvalidRequestError(
      `provider ${provider} (Anthropic's API) needs max_tokens above the thinking budget (${budget} tokens, ` +
        `Anthropic's minimum is ${ANTHROPIC_MIN_THINKING_BUDGET}); raise max_tokens above ${budget} or leave out the reasoning budget`,
      "max_tokens",
    );
  return { type: "enabled", budget_tokens: budget };
}

/**
 * Ollama's `think`: false for a budget of 0, the level for "low"/"medium"/"high" (the levels Ollama takes), true
 * for any other request to reason (Ollama has no token budget: a number becomes true, so the budget is not
 * enforced). Nothing when the client said nothing.
 */
export function ollamaThink(reasoning: ReasoningOptions | undefined): boolean | "low" | "medium" | "high" | undefined {
  if (!reasoning) return undefined;
  if (reasoning.budgetTokens === 0) return false;
  const effort = reasoning.effort;
  return effort === "low" || effort === "medium" || effort === "high" ? effort : true;
}

/** The reasoning options of a request (a completion has none to forward: its text is raw). */
export function reasoningOf(request: GenerateRequest): ReasoningOptions | undefined {
  return request.kind === "chat" ? request.reasoning : undefined;
}
