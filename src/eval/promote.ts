import { isMap, isSeq, parseDocument, YAMLMap } from "yaml";
import type { EvalSummary, ModelSummary } from "./summary.js";

export interface RouteTarget {
  provider: string;
  model: string;
}

/** The cheapest model the run found good enough (ties: the higher pass rate), or null when none was. */
export function cheapestGoodEnough(summary: EvalSummary): ModelSummary | null {
  const candidates = summary.models
    .filter((model) => model.verdict === "good enough")
    .sort(
      (a, b) =>
        (a.costPer1000 ?? Number.POSITIVE_INFINITY) - (b.costPer1000 ?? Number.POSITIVE_INFINITY) ||
        b.passRate - a.passRate,
    );
  return candidates[0] ?? null;
}

export interface RouteChange {
  route: string;
  before: RouteTarget[];
  after: RouteTarget[];
  /** freehold.yaml with the change, comments and layout otherwise kept. */
  text: string;
}

function describe(item: unknown): RouteTarget[] {
  if (!isMap(item)) return [];
  const balance = item.get("balance");
  if (isSeq(balance)) return balance.items.flatMap(describe);
  return [{ provider: String(item.get("provider")), model: String(item.get("model")) }];
}

/**
 * Makes `target` the first target of `route` in freehold.yaml's text; the targets it had stay behind it as
 * fallbacks (a plain target equal to the new one is dropped, not repeated). Throws naming the route when the file
 * has no such route.
 */
export function promoteInConfig(text: string, file: string, route: string, target: RouteTarget): RouteChange {
  const doc = parseDocument(text);
  if (doc.errors[0]) throw new Error(`${file}: ${doc.errors[0].message.split("\n")[0]}`);
  const targets = doc.getIn(["routes", route, "targets"], true);
  if (!isSeq(targets))
    throw new Error(`${file}: there is no route ${JSON.stringify(route)} with targets; add it under routes first`);
  const before = targets.items.flatMap(describe);
  const same = (item: unknown) => {
    const described = isMap(item) && !item.has("balance") ? describe(item)[0] : undefined;
    return described?.provider === target.provider && described.model === target.model;
  };
  const kept = targets.items.filter((item) => !same(item));
  const first = new YAMLMap();
  first.set("provider", target.provider);
  first.set("model", target.model);
  targets.items = [first, ...kept];
  return { route, before, after: targets.items.flatMap(describe), text: doc.toString() };
}
