import type { LedgerRow, UsageGroup, UsageLine, UsageQuery } from "./ledger.js";
import type { Db, PostgresDatabase } from "./postgresDatabase.js";
import type { Settlement } from "./store.js";

const groupColumns: Record<UsageGroup, string> = {
  key: "COALESCE(key_name, '(no key)')",
  model: "model",
  day: "to_char(to_timestamp(time_ms / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
  hour: "to_char(to_timestamp(time_ms / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:00\"Z\"')",
  provider: "provider",
  api: "api",
  status: "status::text",
};

/** The ledger's columns under LedgerRow's names. */
const ledgerColumns = `request_id AS "requestId", time_ms AS "timeMs", key_id AS "keyId", key_name AS "keyName", api,
  route, kind, model, provider, prompt_tokens AS "promptTokens", completion_tokens AS "completionTokens",
  cached_tokens AS "cachedTokens", ttft_ms AS "ttftMs", duration_ms AS "durationMs", status, error_code AS "errorCode",
  bytes, cost_usd AS "costUsd", local_cost_usd AS "localCostUsd", equivalent_usd AS "equivalentUsd",
  equivalent_model AS "equivalentModel"`;

/** Writes a settled request's row (once: a retried settlement does not count it twice). */
export function insertLedgerRow(db: Db, row: Settlement["row"]) {
  const ledgerRow = {
    request_id: row.requestId,
    time_ms: row.timeMs,
    key_id: row.keyId,
    key_name: row.keyName,
    api: row.api,
    route: row.route,
    kind: row.kind,
    model: row.model,
    provider: row.provider,
    prompt_tokens: row.promptTokens,
    completion_tokens: row.completionTokens,
    cached_tokens: row.cachedTokens,
    ttft_ms: row.ttftMs,
    duration_ms: row.durationMs,
    status: row.status,
    error_code: row.errorCode,
    bytes: row.bytes,
    cost_usd: row.costUsd,
    local_cost_usd: row.localCostUsd,
    equivalent_usd: row.equivalentUsd,
    equivalent_model: row.equivalentModel,
  };
  return db`INSERT INTO ledger ${db(ledgerRow)} ON CONFLICT (request_id) DO NOTHING`;
}

/** The ledger, usage reports and stored content on PostgreSQL. */
export class PostgresLedger {
  constructor(private readonly db: PostgresDatabase) {}

  async completeRequests(entries: readonly { requestId: string; status: number; bytes: number }[]): Promise<void> {
    if (entries.length === 0) return;
    const ids = entries.map((entry) => entry.requestId);
    const statuses = entries.map((entry) => entry.status);
    const bytes = entries.map((entry) => entry.bytes);
    // One statement for the whole batch: the rows come in as parallel arrays.
    await this.db.run(
      () => this.db
        .sql`UPDATE ledger SET status = CASE WHEN ledger.status = 200 THEN batch.status ELSE ledger.status END,
          bytes = batch.bytes
        FROM (SELECT * FROM unnest(${ids}::text[], ${statuses}::int[], ${bytes}::bigint[])
              AS t(request_id, status, bytes)) AS batch
        WHERE ledger.request_id = batch.request_id`,
    );
  }

  async usage(query: UsageQuery): Promise<UsageLine[]> {
    const by = query.by.length > 0 ? query.by : (["key"] as const);
    const selects = by.map((group, index) => `${groupColumns[group]} AS g${index}`).join(", ");
    const params: (string | number)[] = [query.sinceMs ?? 0, query.untilMs ?? Number.MAX_SAFE_INTEGER];
    const where = ["time_ms >= $1", "time_ms < $2"];
    if (query.key !== undefined) {
      params.push(query.key);
      where.push("key_name = $3");
    }
    const groups = by.map((_, index) => `g${index}`).join(", ");
    const rows = await this.db.run(
      () =>
        this.db.sql.unsafe(
          `SELECT ${selects}, COUNT(*)::float8 AS requests, SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END)::float8 AS errors,
         SUM(prompt_tokens)::float8 AS prompt_tokens, SUM(completion_tokens)::float8 AS completion_tokens,
         SUM(cached_tokens)::float8 AS cached_tokens, SUM(cost_usd) AS remote, SUM(local_cost_usd) AS local,
         SUM(equivalent_usd) AS equivalent, AVG(ttft_ms) AS ttft
         FROM ledger WHERE ${where.join(" AND ")} GROUP BY ${groups} ORDER BY ${groups}`,
          params,
        ) as Promise<Record<string, number | string | null>[]>,
    );
    return rows.map((row) => {
      const remote = Number(row.remote ?? 0);
      const local = Number(row.local ?? 0);
      const equivalent = Number(row.equivalent ?? 0);
      return {
        group: Object.fromEntries(by.map((group, index) => [group, String(row[`g${index}`])])),
        requests: Number(row.requests),
        errors: Number(row.errors ?? 0),
        promptTokens: Number(row.prompt_tokens ?? 0),
        completionTokens: Number(row.completion_tokens ?? 0),
        cachedTokens: Number(row.cached_tokens ?? 0),
        costUsd: remote + local,
        remoteCostUsd: remote,
        localCostUsd: local,
        equivalentUsd: equivalent,
        savedUsd: equivalent - local,
        averageTtftMs: row.ttft === null ? null : Number(row.ttft),
      };
    });
  }

  async rows(options: { sinceMs?: number; limit?: number } = {}): Promise<LedgerRow[]> {
    return this.db.run(
      () =>
        this.db.sql.unsafe(`SELECT ${ledgerColumns} FROM ledger WHERE time_ms >= $1 ORDER BY id LIMIT $2`, [
          options.sinceMs ?? 0,
          options.limit ?? 1_000_000,
        ]) as Promise<LedgerRow[]>,
    );
  }

  async row(requestId: string): Promise<LedgerRow | undefined> {
    const [row] = await this.db.run(
      () =>
        this.db.sql.unsafe(`SELECT ${ledgerColumns} FROM ledger WHERE request_id = $1`, [requestId]) as Promise<
          LedgerRow[]
        >,
    );
    return row;
  }

  async expireContent(now: number): Promise<number> {
    const result = await this.db.run(
      () => this.db.sql`DELETE FROM content WHERE expires_ms IS NOT NULL AND expires_ms <= ${now}`,
    );
    return result.count;
  }
}
