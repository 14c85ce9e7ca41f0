import assert from "node:assert/strict";
import { test } from "node:test";
import { REASONING_EFFORT_BUDGETS, reasoningForEffort } from "../core/chat.js";
import { InvalidRequestError } from "../core/errors.js";
import { anthropicThinking, effortForBudget, ollamaThink, openAIReasoningEffort } from "./reasoning.js";

test("a token budget becomes the smallest level that covers it; past the largest, the largest", () => {
  for (const [level, budget] of Object.entries(REASONING_EFFORT_BUDGETS)) {
    assert.equal(effortForBudget(budget), level, `exactly ${budget}`);
    if (budget > 0) assert.equal(effortForBudget(budget - 1), level, `just under ${budget}`);
  }
  assert.equal(effortForBudget(1), "minimal");
  assert.equal(effortForBudget(257), "low");
  assert.equal(effortForBudget(1_000_000), "high");
});

test("OpenAI: the named level as asked; a bare budget as a level; nothing when nothing or no budget was asked", () => {
  for (const level of Object.keys(REASONING_EFFORT_BUDGETS) as (keyof typeof REASONING_EFFORT_BUDGETS)[])
    assert.equal(openAIReasoningEffort(reasoningForEffort(level)), level);
  assert.equal(openAIReasoningEffort({ budgetTokens: 5000 }), "high");
  assert.equal(openAIReasoningEffort({ budgetTokens: 0 }), "none");
  assert.equal(openAIReasoningEffort({}), undefined);
  assert.equal(openAIReasoningEffort(undefined), undefined);
});

test("Anthropic: 0 disables, a budget is raised to 1024 and must stay below max_tokens, no budget sends nothing", () => {
  assert.deepEqual(anthropicThinking({ budgetTokens: 0 }, 10, "a"), { type: "disabled" });
  assert.deepEqual(anthropicThinking({ budgetTokens: 1 }, 2000, "a"), { type: "enabled", budget_tokens: 1024 });
  assert.deepEqual(anthropicThinking({ budgetTokens: 5000 }, 5001, "a"), { type: "enabled", budget_tokens: 5000 });
  assert.equal(anthropicThinking({}, 100, "a"), undefined);
  assert.equal(anthropicThinking(undefined, 100, "a"), undefined);
  for (const [budget, maxTokens] of [
    [5000, 5000],
    [5000, 10],
    [1, 1024],
    [256, 500],
  ] as const)
    assert.throws(
      () => anthropicThinking({ budgetTokens: budget }, maxTokens, "claude"),
      (error: unknown) =>
        error instanceof InvalidRequestError && /claude/.test(error.message) && /max_tokens/.test(error.message),
    );
});

test("Ollama: false for 0, its own levels as levels, true for any other request to reason", () => {
  assert.equal(ollamaThink({ budgetTokens: 0 }), false);
  assert.equal(ollamaThink(reasoningForEffort("none")), false);
  for (const level of ["low", "medium", "high"] as const) assert.equal(ollamaThink(reasoningForEffort(level)), level);
  assert.equal(ollamaThink(reasoningForEffort("minimal")), true);
  assert.equal(ollamaThink({ budgetTokens: 2000 }), true);
  assert.equal(ollamaThink({}), true);
  assert.equal(ollamaThink(undefined), undefined);
});
