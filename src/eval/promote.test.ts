import assert from "node:assert/strict";
import { test } from "node:test";
import { cheapestGoodEnough, promoteInConfig } from "./promote.js";
import type { EvalSummary, ModelSummary } from "./summary.js";

const config = `# routes for the team
routes:
  smart:
    privacy: local-only
    targets:
      - provider: cloud # paid
        model: gpt-4o
      - provider: local
        model: small
  other:
    targets:
      - { provider: local, model: x }
`;

test("promotion puts the candidate first and keeps the rest as fallbacks, comments and all", () => {
  const change = promoteInConfig(config, "f.yaml", "smart", { provider: "local", model: "small" });
  assert.deepEqual(change.before, [
    { provider: "cloud", model: "gpt-4o" },
    { provider: "local", model: "small" },
  ]);
  assert.deepEqual(change.after, [
    { provider: "local", model: "small" },
    { provider: "cloud", model: "gpt-4o" },
  ]);
  assert.match(change.text, /^# routes for the team/);
  assert.match(change.text, /- provider: cloud # paid/);
  assert.match(change.text, /privacy: local-only/);
  assert.match(change.text, /other:\n\s+targets:\n\s+- \{ provider: local, model: x \}/);
  const added = promoteInConfig(config, "f.yaml", "smart", { provider: "local", model: "big" });
  assert.equal(added.after.length, 3);
  assert.throws(
    () => promoteInConfig(config, "f.yaml", "missing", { provider: "local", model: "x" }),
    /f\.yaml: there is no route "missing"/,
  );
});

function model(name: string, verdict: ModelSummary["verdict"], costPer1000: number | null, passRate = 0.9) {
  return { model: name, verdict, costPer1000, passRate } as ModelSummary;
}

test("the cheapest good-enough model wins; unpriced ones come last; none when nothing is good enough", () => {
  const summary = (models: ModelSummary[]) => ({ models }) as EvalSummary;
  assert.equal(
    cheapestGoodEnough(
      summary([
        model("paid", "baseline", 5),
        model("a", "good enough", 0.02),
        model("b", "good enough", 0.01, 0.85),
        model("c", "not good enough", 0.001),
        model("d", "good enough", null),
      ]),
    )?.model,
    "b",
  );
  assert.equal(cheapestGoodEnough(summary([model("c", "not good enough", 0.001)])), null);
});
