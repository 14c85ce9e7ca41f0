import { InvalidRequestError } from "../core/errors.js";
import type { ControlDatabase } from "./database.js";

/** One request, as the ledger records it. Never holds a secret or content (content has its own, opt-in table). */
export interface LedgerRow {
  requestId: string;
  timeMs: number;
  keyId: string | null;
  keyName: string | null;
  api: string;
  route: string;
  kind: string;
  model: string;
  provider: string;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  ttftMs: number | null;
  durationMs: number;
  status: number;
  errorCode: string | null;
  bytes: number | null;
  /** What the request really cost (remote providers' prices). */
  costUsd: number;
  /** Electricity for a local request. */
  localCostUsd: number;
  /** What a local request would have cost on the paid equivalent. */
  equivalentUsd: number;
  equivalentModel: string | null;
}

export const usageGroups = ["key", "model", "day", "hour", "provider", "api", "status"] as const;
export type UsageGroup = (typeof usageGroups)[number];

const groupColumns: Record<UsageGroup, string> = {
  key: "COALESCE(key_name, '(no key)')",
  model: "model",
  day: "strftime('%Y-%m-%d', time_ms / 1000, 'unixepoch')",
  // For charts of one day's traffic (the console's usage page): UTC, like "day".
  hour: "strftime('%Y-%m-%dT%H:00Z', time_ms / 1000, 'unixepoch')",
  provider: "provider",
  api: "api",
  status: "CAST(status AS TEXT)",
};

export interface UsageQuery {
  by: readonly UsageGroup[];
  sinceMs?: number;
  untilMs?: number;
  /** Only this key (by name). */
  key?: string;
}

export interface UsageLine {
  group: Record<string, string>;
  requests: number;
  errors: number;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  /** Real cost: remote providers plus local electricity. */
  costUsd: number;
  remoteCostUsd: number;
  localCostUsd: number;
  /** What the local requests would have cost on the paid equivalent. */
  equivalentUsd: number;
  /** equivalentUsd minus local electricity. */
  savedUsd: number;
  averageTtftMs: number | null;
}

/** Parses "by" as given on the CLI or in a query string: "key", "key,model". */
export function parseUsageGroups(value: string | undefined, param = "by"): UsageGroup[] {
  if (!value) return ["key"];
  const groups = value.split(",").map((part) => part.trim());
  for (const group of groups)
    if (!usageGroups.includes(group as UsageGroup))
      throw new InvalidRequestError(
        `${param} must be one or more of ${usageGroups.join(", ")} (comma-separated), not ${JSON.stringify(group.slice(0, 40))}`,
        param,
      );
  return [...new Set(groups)] as UsageGroup[];
}

/** The usage ledger: one row per request, written in the same transaction that settles its quota reservation. */
export class Ledger {
  private readonly insertRow;
  private readonly completeRow;

  constructor(private readonly db: ControlDatabase) {
    this.insertRow = db.prepare(`INSERT INTO ledger (request_id, time_ms, key_id, key_name, api, route, kind, model,
      provider, prompt_tokens, completion_tokens, cached_tokens, ttft_ms, duration_ms, status, error_code, bytes,
      cost_usd, local_cost_usd, equivalent_usd, equivalent_model)
      VALUES (@requestId, @timeMs, @keyId, @keyName, @api, @route, @kind, @model, @provider, @promptTokens,
      @completionTokens, @cachedTokens, @ttftMs, @durationMs, @status, @errorCode, @bytes, @costUsd, @localCostUsd,
      @equivalentUsd, @equivalentModel)
      ON CONFLICT (request_id) DO NOTHING`);
    this.completeRow = db.prepare(
      "UPDATE ledger SET status = CASE WHEN status = 200 THEN ? ELSE status END, bytes = ? WHERE request_id = ?",
    );
  }

  insert(row: LedgerRow): void {
    this.insertRow.run(row);
  }

  /** The HTTP layer's part of a row: the bytes it sent, and its status when the gateway saw no error. */
  complete(requestId: string, status: number, bytes: number): void {
    this.completeRow.run(status, bytes, requestId);
  }

  /** One request's row (the console's compare view shows its cost), or undefined when it is not recorded. */
  row(requestId: string): LedgerRow | undefined {
    return this.db
      .prepare<[string], Record<string, unknown>>(
        `SELECT request_id AS requestId, time_ms AS timeMs, key_id AS keyId, key_name AS keyName, api, route, kind,
         model, provider, prompt_tokens AS promptTokens, completion_tokens AS completionTokens,
         cached_tokens AS cachedTokens, ttft_ms AS ttftMs, duration_ms AS durationMs, status, error_code AS errorCode,
         bytes, cost_usd AS costUsd, local_cost_usd AS localCostUsd, equivalent_usd AS equivalentUsd,
         equivalent_model AS equivalentModel FROM ledger WHERE request_id = ?`,
      )
      .get(requestId) as unknown as LedgerRow | undefined;
  }

  /** The id of the key that made a request: null when it was made without one, undefined when no row is kept. */
  keyIdOf(requestId: string): string | null | undefined {
    const row = this.db
      .prepare<[string], { keyId: string | null }>("SELECT key_id AS keyId FROM ledger WHERE request_id = ?")
      .get(requestId);
    return row ? row.keyId : undefined;
  }

  rows(options: { sinceMs?: number; limit?: number } = {}): LedgerRow[] {
    return this.db
      .prepare<[number, number], Record<string, unknown>>(
        `SELECT request_id AS requestId, time_ms AS timeMs, key_id AS keyId, key_name AS keyName, api, route, kind,
         model, provider, prompt_tokens AS promptTokens, completion_tokens AS completionTokens,
         cached_tokens AS cachedTokens, ttft_ms AS ttftMs, duration_ms AS durationMs, status, error_code AS errorCode,
         bytes, cost_usd AS costUsd, local_cost_usd AS localCostUsd, equivalent_usd AS equivalentUsd,
         equivalent_model AS equivalentModel FROM ledger WHERE time_ms >= ? ORDER BY id LIMIT ?`,
      )
      .all(options.sinceMs ?? 0, options.limit ?? 1_000_000) as unknown as LedgerRow[];
  }

  /** Totals grouped as asked: which key used what, what it cost, what it saved. */
  usage(query: UsageQuery): UsageLine[] {
    const by = query.by.length > 0 ? query.by : (["key"] as const);
    const selects = by.map((group, index) => `${groupColumns[group]} AS g${index}`).join(", ");
    const where = ["time_ms >= @since", "time_ms < @until"];
    if (query.key !== undefined) where.push("key_name = @key");
    const rows = this.db
      .prepare(
        `SELECT ${selects}, COUNT(*) AS requests, SUM(status >= 400) AS errors,
         SUM(prompt_tokens) AS promptTokens, SUM(completion_tokens) AS completionTokens,
         SUM(cached_tokens) AS cachedTokens, SUM(cost_usd) AS remoteCostUsd, SUM(local_cost_usd) AS localCostUsd,
         SUM(equivalent_usd) AS equivalentUsd, AVG(ttft_ms) AS averageTtftMs
         FROM ledger WHERE ${where.join(" AND ")}
         GROUP BY ${by.map((_, index) => `g${index}`).join(", ")}
         ORDER BY ${by.map((_, index) => `g${index}`).join(", ")}`,
      )
      .all({
        since: query.sinceMs ?? 0,
        until: query.untilMs ?? Number.MAX_SAFE_INTEGER,
        ...(query.key !== undefined ? { key: query.key } : {}),
      }) as Record<string, number | string | null>[];
    return rows.map((row) => {
      const remote = Number(row.remoteCostUsd ?? 0);
      const local = Number(row.localCostUsd ?? 0);
      const equivalent = Number(row.equivalentUsd ?? 0);
      return {
        group: Object.fromEntries(by.map((group, index) => [group, String(row[`g${index}`])])),
        requests: Number(row.requests),
        errors: Number(row.errors ?? 0),
        promptTokens: Number(row.promptTokens ?? 0),
        completionTokens: Number(row.completionTokens ?? 0),
        cachedTokens: Number(row.cachedTokens ?? 0),
        costUsd: remote + local,
        remoteCostUsd: remote,
        localCostUsd: local,
        equivalentUsd: equivalent,
        savedUsd: equivalent - local,
        averageTtftMs: row.averageTtftMs === null ? null : Number(row.averageTtftMs),
      };
    });
  }

  /** Keeps a request's content (only for keys that turned it on), until `expiresMs`. */
  storeContent(
    requestId: string,
    keyId: string,
    timeMs: number,
    expiresMs: number | null,
    request: unknown,
    response: string,
  ): void {
    this.db
      .prepare(
        "INSERT OR REPLACE INTO content (request_id, key_id, time_ms, expires_ms, request, response) VALUES (?, ?, ?, ?, ?, ?)",
      )
      .run(requestId, keyId, timeMs, expiresMs, JSON.stringify(request), response);
  }

  /** Deletes stored content past its retention period. */
  expireContent(now = Date.now()): number {
    return this.db.prepare("DELETE FROM content WHERE expires_ms IS NOT NULL AND expires_ms <= ?").run(now).changes;
  }
}
