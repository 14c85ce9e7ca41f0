import { randomUUID } from "node:crypto";
import postgres from "postgres";
import type { AuditEvent } from "../core/context.js";
import { AuthenticationError, InvalidRequestError, NotFoundError, UnavailableError } from "../core/errors.js";
import {
  type AuditEntry,
  type AuditRow,
  type AuditVerification,
  acknowledgeEvent,
  ChainChecker,
  chainRows,
  compareHead,
  cutEvent,
  genesis,
  headRowProblem,
  type KeyTableRow,
  keyedAction,
  keyedEvent,
  keyProblems,
  ledgerProblems,
  missingKeyProblem,
  type PendingEntry,
  secretFingerprint,
  toEntry,
  type UnexplainedLedgerRow,
  unexplainedLedgerRows,
  verdict,
  witnessProblem,
} from "./auditChain.js";
import {
  type AuditHead,
  type AuditKey,
  type AuditKeySource,
  auditKey,
  existingAuditKey,
  makeHead,
  WitnessWriter,
  witnessPath,
} from "./auditKey.js";
import { type EvalRows, PostgresEvalRows } from "./evalRows.js";
import {
  activeKey,
  type KeyChangeBy,
  type KeyRecord,
  type KeyRow,
  type KeySettings,
  keyChanges,
  keyCreateEvent,
  keyRevokeEvent,
  keyUpdateEvent,
  mintKey,
  presentedHash,
  toRecord,
} from "./keys.js";
import type { LedgerRow, UsageGroup, UsageLine, UsageQuery } from "./ledger.js";
import { postgresMigrations } from "./migrations.js";
import {
  decideReservation,
  LEASE_MS,
  newReservationId,
  type QuotaKey,
  type QuotaState,
  type Reservation,
  type ReserveRequest,
  rateLimitHeaders,
  refilledLevel,
  utcDayPeriod,
  utcMonthPeriod,
} from "./quotas.js";
import { type ControlStore, redactUrl, type Settlement, type StoreStatus } from "./store.js";

type Sql = postgres.Sql<Record<string, never>>;

/** This replica's audit key is not the one the shared trail is keyed with (or it has none). */
export class AuditKeyMismatchError extends Error {}
type Tx = postgres.TransactionSql<Record<string, never>>;

/**
 * How long a reservation may outlive its request before any replica drops it: a replica killed mid-request leaves
 * its reservations behind, and on a shared database a process id says nothing about another machine.
 */
export const RESERVATION_LEASE_MS = LEASE_MS;

/** Held while migrating, so replicas starting together migrate once. */
const MIGRATION_LOCK = 1_717_017;

const groupColumns: Record<UsageGroup, string> = {
  key: "COALESCE(key_name, '(no key)')",
  model: "model",
  day: "to_char(to_timestamp(time_ms / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
  hour: "to_char(to_timestamp(time_ms / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:00\"Z\"')",
  provider: "provider",
  api: "api",
  status: "status::text",
};

/** The driver's errors that mean "the database is not there" rather than "this statement is wrong". */
function unreachable(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code ?? "";
  return (
    /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EHOSTUNREACH|EPIPE|CONNECT_TIMEOUT|CONNECTION_CLOSED|CONNECTION_ENDED|CONNECTION_DESTROYED)$/.test(
      code,
    ) ||
    code.startsWith("08") || // connection exception
    code === "57P01" || // admin shutdown
    code === "57P03" // cannot connect now (starting up)
  );
}

/**
 * The control plane on PostgreSQL, for several gateway replicas sharing one database. Admission locks the key's row
 * (SELECT … FOR UPDATE) and reads its limits and state in the same transaction; settlement takes the same lock, so
 * two replicas never both admit against the same room, and a revoked or changed key counts at once everywhere. The
 * audit chain is extended under a lock on its head row, so concurrent writers make one chain.
 */
export class PostgresStore implements ControlStore {
  readonly engine = "postgres" as const;
  /** This start's id: its reservations carry it and a lease it renews (quotas.ts LEASE_MS). */
  readonly instance = `run_${randomUUID().replaceAll("-", "")}`;
  private readonly sql: Sql;
  readonly evals: EvalRows;
  private readonly witness: string;
  private readonly witnessWriter: WitnessWriter;
  private key: AuditKey | undefined;
  /** Whether the trail has its `audit.keyed` entry (found once, then remembered). */
  private keyed = false;

  private constructor(
    private readonly url: string,
    private readonly auditSource: AuditKeySource,
    options: { max?: number } = {},
  ) {
    this.witness = witnessPath(auditSource);
    this.witnessWriter = new WitnessWriter(this.witness);
    this.sql = postgres(url, {
      max: options.max ?? 10,
      prepare: true,
      connect_timeout: 5,
      idle_timeout: 60,
      onnotice: () => {},
      // Counters and milliseconds are BIGINT; they stay far below 2^53, so numbers (not strings) are exact.
      types: {
        bigint: {
          to: 20,
          from: [20],
          serialize: (value: number) => String(value),
          parse: (value: string) => Number(value),
        },
      } as unknown as Record<string, never>,
    }) as unknown as Sql;
    this.evals = new PostgresEvalRows(this.sql, (work) => this.run(work));
  }

  /**
   * Connects and migrates (one replica at a time, under an advisory lock). `audit` is the audit chain's key, the same
   * for every replica: one that is unusable, or not the key the trail was keyed with, refuses the start (a replica
   * with another key would write entries no other replica can verify).
   */
  static async open(url: string, options: { max?: number; audit: AuditKeySource }): Promise<PostgresStore> {
    const store = new PostgresStore(url, options.audit, options);
    try {
      store.key = existingAuditKey(options.audit);
      await store.migrate();
      await store.checkAnchor();
    } catch (error) {
      await store.sql.end({ timeout: 1 });
      throw store.wrap(error);
    }
    return store;
  }

  /** Refuses a key that is not the one the trail's `audit.keyed` entry names (or none, on a keyed trail). */
  private async checkAnchor(): Promise<void> {
    const [anchor] = await this.sql<{ detail: string | null }[]>`SELECT detail FROM audit WHERE action = ${keyedAction}
      ORDER BY seq LIMIT 1`;
    if (!anchor) return;
    this.checkAnchorKey(this.key, anchor.detail);
    this.keyed = true;
  }

  /**
   * Throws when `key` is not the one a keyed trail's anchor names: a replica with another key (one it created on
   * its own, say) would append entries that neither the other replicas nor `audit verify` can check.
   */
  private checkAnchorKey(key: AuditKey | undefined, detail: string | null): void {
    const keyId = String((JSON.parse(detail ?? "{}") as { keyId?: unknown }).keyId);
    const where =
      this.auditSource.secret !== undefined ? "FREEHOLD_AUDIT_KEY" : `the key file ${this.auditSource.file}`;
    if (!key)
      throw new AuditKeyMismatchError(
        `the audit trail in ${redactUrl(this.url)} is keyed with audit key ${keyId}, and this replica has none (${where} does not exist): give every replica the same key (FREEHOLD_AUDIT_KEY, or a copy of the key file)`,
      );
    if (key.id !== keyId)
      throw new AuditKeyMismatchError(
        `the audit trail in ${redactUrl(this.url)} is keyed with audit key ${keyId}, but this replica's key (${where}) is ${key.id}: give every replica the same key (FREEHOLD_AUDIT_KEY, or a copy of the key file)`,
      );
  }

  /** The chain's key, creating its file on first use. */
  private currentKey(): AuditKey {
    this.key ??= auditKey(this.auditSource);
    return this.key;
  }

  private async migrate(): Promise<void> {
    await this.sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
      await tx`CREATE TABLE IF NOT EXISTS freehold_schema (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)`;
      const [row] = await tx<{ version: number }[]>`SELECT version FROM freehold_schema WHERE id = 1`;
      const current = row?.version ?? 0;
      if (current > postgresMigrations.length)
        throw new Error(
          `the control database is at schema version ${current}, newer than this freehold knows (${postgresMigrations.length}); upgrade freehold`,
        );
      for (let version = current + 1; version <= postgresMigrations.length; version++)
        await tx.unsafe(postgresMigrations[version - 1]!).simple();
      await tx`INSERT INTO freehold_schema (id, version) VALUES (1, ${postgresMigrations.length})
               ON CONFLICT (id) DO UPDATE SET version = excluded.version`;
    });
  }

  /** A database that cannot be reached becomes a 503 that names it (without its password); others pass through. */
  private wrap(error: unknown): unknown {
    if (unreachable(error))
      return new UnavailableError(
        `The control plane's database (${redactUrl(this.url)}) is unreachable, so no request can be metered; retry shortly`,
        "control_plane_unavailable",
        error,
      );
    return error;
  }

  private async run<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw this.wrap(error);
    }
  }

  async hasKeys(): Promise<boolean> {
    return this.run(async () => (await this.sql`SELECT EXISTS (SELECT 1 FROM keys) AS found`)[0]!.found === true);
  }

  async resolveKey(secret: string, now: number): Promise<KeyRecord> {
    const hash = presentedHash(secret);
    const [row] = await this.run(() => this.sql<KeyRow[]>`SELECT * FROM keys WHERE hash = ${hash.toString("hex")}`);
    return activeKey(row, hash, now);
  }

  private async findKey(db: Sql | Tx, idOrName: string): Promise<KeyRecord | undefined> {
    const [row] = await db<
      KeyRow[]
    >`SELECT * FROM keys WHERE id = ${idOrName} OR (name = ${idOrName} AND revoked_at IS NULL)
      ORDER BY revoked_at IS NULL DESC LIMIT 1`;
    return row ? toRecord(row) : undefined;
  }

  async getKey(idOrName: string): Promise<KeyRecord> {
    const key = await this.run(() => this.findKey(this.sql, idOrName));
    if (!key)
      throw new NotFoundError(`no key named or with id ${JSON.stringify(idOrName.slice(0, 80))}`, "key_not_found");
    return key;
  }

  async listKeys(includeRevoked: boolean): Promise<KeyRecord[]> {
    const rows = await this.run(
      () => this.sql<KeyRow[]>`SELECT * FROM keys ${includeRevoked ? this.sql`` : this.sql`WHERE revoked_at IS NULL`}
        ORDER BY created_at, name`,
    );
    return rows.map(toRecord);
  }

  async createKey(name: string, settings: KeySettings, by: KeyChangeBy): Promise<{ secret: string; key: KeyRecord }> {
    const minted = mintKey(name, settings);
    const row = { id: minted.id, name, hash: minted.hash, created_at: minted.createdAt, ...minted.columns };
    const fingerprint = secretFingerprint(this.currentKey(), minted.hash);
    try {
      const key = await this.audited(async (tx) => {
        await tx`INSERT INTO keys ${tx(row as Record<string, postgres.SerializableParameter>)}`;
        const key = (await this.findKey(tx, minted.id))!;
        return { result: key, event: keyCreateEvent(key, fingerprint, by) };
      });
      return { secret: minted.secret, key };
    } catch (error) {
      // The active-name index is the arbiter when two replicas create the same name at once.
      if ((error as { code?: string }).code === "23505")
        throw new InvalidRequestError(`a key named ${name} already exists`, "name", "key_exists");
      throw error;
    }
  }

  async updateKey(idOrName: string, settings: KeySettings, by: KeyChangeBy): Promise<KeyRecord> {
    const key = await this.getKey(idOrName);
    const changes = keyChanges(key, settings);
    if (Object.keys(changes).length === 0) return key;
    return this.audited(async (tx) => {
      await tx`UPDATE keys SET ${tx(changes as Record<string, postgres.SerializableParameter>)} WHERE id = ${key.id}`;
      const updated = (await this.findKey(tx, key.id))!;
      return { result: updated, event: keyUpdateEvent(updated, settings, by) };
    });
  }

  async revokeKey(idOrName: string, by: KeyChangeBy): Promise<KeyRecord> {
    const key = await this.getKey(idOrName);
    return this.audited(async (tx) => {
      await tx`UPDATE keys SET revoked_at = ${new Date().toISOString()} WHERE id = ${key.id} AND revoked_at IS NULL`;
      return { result: (await this.findKey(tx, key.id))!, event: keyRevokeEvent(key, by) };
    });
  }

  async reserve(key: QuotaKey, request: ReserveRequest, now: number): Promise<Reservation> {
    return this.run(() =>
      this.sql.begin(async (tx) => {
        // The row lock orders this key's admissions and settlements across replicas; the limits are re-read under
        // it, so a key revoked or changed on another replica counts from this request on.
        const day = utcDayPeriod(now);
        const month = utcMonthPeriod(now);
        // Sent together (one round trip), run in order: the state query starts, and takes its snapshot, only once
        // the lock is held, so it sees every settlement committed before.
        const locked = tx<KeyRow[]>`SELECT * FROM keys WHERE id = ${key.id} FOR UPDATE`.execute();
        // Another start's reservations whose lease ran out: that replica died (or froze) without settling them.
        const expired = tx`DELETE FROM reservations WHERE key_id = ${key.id} AND instance != ${this.instance}
          AND lease_until_ms < ${now}`.execute();
        const read = tx<
          {
            tokens: number;
            usd: number;
            running: number;
            day_tokens: number;
            day_usd: number;
            month_tokens: number;
            month_usd: number;
            rpm_level: number | null;
            rpm_ms: number | null;
            tpm_level: number | null;
            tpm_ms: number | null;
          }[]
        >`SELECT
            (SELECT COALESCE(SUM(tokens), 0)::float8 FROM reservations WHERE key_id = ${key.id}) AS tokens,
            (SELECT COALESCE(SUM(usd), 0)::float8 FROM reservations WHERE key_id = ${key.id}) AS usd,
            (SELECT COUNT(*)::float8 FROM reservations WHERE key_id = ${key.id}) AS running,
            (SELECT tokens::float8 FROM usage_totals WHERE key_id = ${key.id} AND period = ${day}) AS day_tokens,
            (SELECT cost_usd FROM usage_totals WHERE key_id = ${key.id} AND period = ${day}) AS day_usd,
            (SELECT tokens::float8 FROM usage_totals WHERE key_id = ${key.id} AND period = ${month}) AS month_tokens,
            (SELECT cost_usd FROM usage_totals WHERE key_id = ${key.id} AND period = ${month}) AS month_usd,
            (SELECT level FROM buckets WHERE key_id = ${key.id} AND kind = 'rpm') AS rpm_level,
            (SELECT updated_ms::float8 FROM buckets WHERE key_id = ${key.id} AND kind = 'rpm') AS rpm_ms,
            (SELECT level FROM buckets WHERE key_id = ${key.id} AND kind = 'tpm') AS tpm_level,
            (SELECT updated_ms::float8 FROM buckets WHERE key_id = ${key.id} AND kind = 'tpm') AS tpm_ms`.execute();
        const [[keyRow], , [state]] = await Promise.all([locked, expired, read]);
        if (!keyRow) throw new AuthenticationError("Incorrect API key provided: no such key on this server.");
        const current = toRecord(keyRow);
        if (current.revokedAt) throw new AuthenticationError(`The API key ${current.name} was revoked.`, "key_revoked");
        const bucket = (level: number | null, ms: number | null) =>
          level === null || ms === null ? undefined : { level, updated_ms: ms };
        const quotaState: QuotaState = {
          reservedTokens: state!.tokens,
          reservedUsd: state!.usd,
          running: state!.running,
          day: { tokens: state!.day_tokens ?? 0, costUsd: state!.day_usd ?? 0 },
          month: { tokens: state!.month_tokens ?? 0, costUsd: state!.month_usd ?? 0 },
          rpmLevel:
            current.rpm === null
              ? Number.POSITIVE_INFINITY
              : refilledLevel(bucket(state!.rpm_level, state!.rpm_ms), current.rpm, now),
          tpmLevel:
            current.tpm === null
              ? Number.POSITIVE_INFINITY
              : refilledLevel(bucket(state!.tpm_level, state!.tpm_ms), current.tpm, now),
        };
        const decision = decideReservation(current, request, quotaState, now);
        const id = newReservationId();
        const writes: Promise<unknown>[] = [
          tx`INSERT INTO reservations (id, key_id, tokens, usd, pid, created_ms, instance, lease_until_ms)
             VALUES (${id}, ${key.id}, ${decision.tokens}, ${decision.usd}, ${process.pid}, ${now}, ${this.instance},
               ${now + LEASE_MS})`,
        ];
        if (current.rpm !== null) writes.push(this.saveBucket(tx, key.id, "rpm", quotaState.rpmLevel - 1, now));
        if (current.tpm !== null)
          writes.push(this.saveBucket(tx, key.id, "tpm", quotaState.tpmLevel - decision.tokens, now));
        await Promise.all(writes);
        return { id, keyId: key.id, ...decision };
      }),
    );
  }

  private saveBucket(tx: Tx, keyId: string, kind: string, level: number, now: number) {
    return tx`INSERT INTO buckets (key_id, kind, level, updated_ms) VALUES (${keyId}, ${kind}, ${level}, ${now})
      ON CONFLICT (key_id, kind) DO UPDATE SET level = excluded.level, updated_ms = excluded.updated_ms`;
  }

  async settle({ key, reservation, row, content, now }: Settlement): Promise<void> {
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
    const insertLedger = (db: Sql | Tx) => db`INSERT INTO ledger ${db(ledgerRow)} ON CONFLICT (request_id) DO NOTHING`;
    if (!key || !reservation) {
      await this.run(() => insertLedger(this.sql));
      return;
    }
    const tokens = row.promptTokens + row.completionTokens;
    await this.run(() =>
      this.sql.begin(async (tx) => {
        // Pipelined like reserve: the lock, then the bucket read and the writes, sent in one round trip and run in
        // that order (so the bucket is read under the lock).
        const first = Promise.all([
          tx<KeyRow[]>`SELECT * FROM keys WHERE id = ${key.id} FOR UPDATE`.execute(),
          tx<{ level: number; updated_ms: number }[]>`SELECT level, updated_ms FROM buckets
            WHERE key_id = ${key.id} AND kind = 'tpm'`.execute(),
          tx`DELETE FROM reservations WHERE id = ${reservation.id}`.execute(),
          insertLedger(tx).execute(),
          tx`INSERT INTO usage_totals (key_id, period, tokens, cost_usd)
             VALUES (${key.id}, ${utcDayPeriod(now)}, ${tokens}, ${row.costUsd}),
                    (${key.id}, ${utcMonthPeriod(now)}, ${tokens}, ${row.costUsd})
             ON CONFLICT (key_id, period) DO UPDATE SET tokens = usage_totals.tokens + excluded.tokens,
               cost_usd = usage_totals.cost_usd + excluded.cost_usd`.execute(),
          ...(content
            ? [
                tx`INSERT INTO content (request_id, key_id, time_ms, expires_ms, request, response)
            VALUES (${row.requestId}, ${content.keyId}, ${now}, ${content.expiresMs}, ${JSON.stringify(content.request)},
              ${content.response})
            ON CONFLICT (request_id) DO UPDATE SET key_id = excluded.key_id, time_ms = excluded.time_ms,
              expires_ms = excluded.expires_ms, request = excluded.request, response = excluded.response`.execute(),
              ]
            : []),
        ]);
        const [[keyRow], [bucket]] = await first;
        const tpm = keyRow?.tpm ?? null;
        if (tpm !== null) {
          const level = refilledLevel(bucket, tpm, now);
          await this.saveBucket(tx, key.id, "tpm", Math.min(tpm, level + reservation.tokens - tokens), now);
        }
      }),
    );
  }
  async rateLimitHeaders(key: QuotaKey, now: number): Promise<Record<string, string>> {
    if (key.rpm === null && key.tpm === null) return {};
    const rows = await this.run(
      () => this.sql<{ kind: string; level: number; updated_ms: number }[]>`SELECT kind, level, updated_ms
        FROM buckets WHERE key_id = ${key.id}`,
    );
    const level = (kind: string, capacity: number | null) =>
      capacity === null
        ? 0
        : refilledLevel(
            rows.find((row) => row.kind === kind),
            capacity,
            now,
          );
    return rateLimitHeaders(key, level("rpm", key.rpm), level("tpm", key.tpm));
  }

  async completeRequests(entries: readonly { requestId: string; status: number; bytes: number }[]): Promise<void> {
    if (entries.length === 0) return;
    const ids = entries.map((entry) => entry.requestId);
    const statuses = entries.map((entry) => entry.status);
    const bytes = entries.map((entry) => entry.bytes);
    // One statement for the whole batch: the rows come in as parallel arrays.
    await this.run(
      () => this.sql`UPDATE ledger SET status = CASE WHEN ledger.status = 200 THEN batch.status ELSE ledger.status END,
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
    const rows = await this.run(
      () =>
        this.sql.unsafe(
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

  async ledgerRows(options: { sinceMs?: number; limit?: number } = {}): Promise<LedgerRow[]> {
    return this.run(
      () => this.sql<LedgerRow[]>`SELECT request_id AS "requestId", time_ms AS "timeMs", key_id AS "keyId",
        key_name AS "keyName", api, route, kind, model, provider, prompt_tokens AS "promptTokens",
        completion_tokens AS "completionTokens", cached_tokens AS "cachedTokens", ttft_ms AS "ttftMs",
        duration_ms AS "durationMs", status, error_code AS "errorCode", bytes, cost_usd AS "costUsd",
        local_cost_usd AS "localCostUsd", equivalent_usd AS "equivalentUsd", equivalent_model AS "equivalentModel"
        FROM ledger WHERE time_ms >= ${options.sinceMs ?? 0} ORDER BY id LIMIT ${options.limit ?? 1_000_000}`,
    );
  }

  async renewLeases(now: number): Promise<number> {
    const result = await this.run(
      () => this.sql`UPDATE reservations SET lease_until_ms = ${now + LEASE_MS} WHERE instance = ${this.instance}`,
    );
    return result.count;
  }

  /** A pid says nothing about another machine: only leases tell a dead replica's reservations from a live one's. */
  async ledgerRow(requestId: string): Promise<LedgerRow | undefined> {
    const [row] = await this.run(
      () => this.sql<LedgerRow[]>`SELECT request_id AS "requestId", time_ms AS "timeMs", key_id AS "keyId",
        key_name AS "keyName", api, route, kind, model, provider, prompt_tokens AS "promptTokens",
        completion_tokens AS "completionTokens", cached_tokens AS "cachedTokens", ttft_ms AS "ttftMs",
        duration_ms AS "durationMs", status, error_code AS "errorCode", bytes, cost_usd AS "costUsd",
        local_cost_usd AS "localCostUsd", equivalent_usd AS "equivalentUsd", equivalent_model AS "equivalentModel"
        FROM ledger WHERE request_id = ${requestId}`,
    );
    return row;
  }

  async sweepOrphans(now: number): Promise<number> {
    const result = await this.run(
      () => this.sql`DELETE FROM reservations WHERE instance != ${this.instance} AND lease_until_ms < ${now}`,
    );
    return result.count;
  }

  async expireContent(now: number): Promise<number> {
    const result = await this.run(
      () => this.sql`DELETE FROM content WHERE expires_ms IS NOT NULL AND expires_ms <= ${now}`,
    );
    return result.count;
  }

  /**
   * Runs a change and appends the entry describing it in one transaction (neither exists without the other), then
   * writes the witness once it is committed.
   */
  private async audited<T>(change: (tx: Tx) => Promise<{ result: T; event: AuditEvent }>): Promise<T> {
    const { result, head } = await this.run(() =>
      this.sql.begin(async (tx) => {
        const done = await change(tx);
        const head = await this.append(tx, [{ event: done.event, time: new Date().toISOString() }]);
        return { result: done.result, head };
      }),
    );
    this.committed(head, true);
    return result as T;
  }

  async appendAudit(entries: readonly { event: AuditEvent; time: string }[], durable: boolean): Promise<void> {
    if (entries.length === 0) return;
    const head = await this.run(() => this.sql.begin((tx) => this.append(tx, entries)));
    this.committed(head, durable);
  }

  /** After a commit: the trail is keyed, and the witness vouches for its new end (now, or soon off the loop). */
  private committed(head: AuditHead, durable: boolean): void {
    this.keyed = true;
    if (durable) this.witnessWriter.now(head);
    else this.witnessWriter.soon(head);
  }

  /**
   * Inserts the entries after the head (first the `audit.keyed` and `audit.cut` entries when due), under a lock on
   * the head row: writers on every replica queue on it, so concurrent appends make one chain.
   */
  private async append(tx: Tx, entries: readonly PendingEntry[]): Promise<AuditHead> {
    const key = this.currentKey();
    const [locked] = await tx<
      { seq: number; hash: string }[]
    >`SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE`;
    const head = locked ?? { seq: 0, hash: genesis };
    const now = new Date().toISOString();
    const due: PendingEntry[] = [];
    if (!this.keyed) {
      // Another replica may have keyed the trail since this one started: with this key, or refused here.
      const [anchor] = await tx<{ detail: string | null }[]>`SELECT detail FROM audit WHERE action = ${keyedAction}
        ORDER BY seq LIMIT 1`;
      if (anchor) this.checkAnchorKey(key, anchor.detail);
      else
        due.push({
          time: now,
          event: keyedEvent(key, head.seq, head.seq > 0 ? await this.checkChain(tx, undefined) : undefined),
        });
    }
    // Each replica keeps its own witness beside its key: one that has written none yet (a new replica, or this start
    // before its first entry) has nothing to miss; a witness that is there must agree with the trail.
    const cut = await witnessProblem(
      key,
      this.witness,
      head,
      { keyed: this.witnessWriter.wrote, pending: this.witnessWriter.pending },
      (seq) => this.hashAt(tx, seq),
    );
    if (cut) due.push({ time: now, event: cutEvent(cut) });
    const rows = chainRows(head, [...due, ...entries], key);
    const last = rows.at(-1)!;
    await tx`INSERT INTO audit ${tx(rows as unknown as Record<string, postgres.SerializableParameter>[])}`;
    await tx`UPDATE audit_head SET seq = ${last.seq}, hash = ${last.hash} WHERE id = 1`;
    return makeHead(key, last);
  }

  private async hashAt(db: Sql | Tx, seq: number): Promise<string | undefined> {
    const [row] = await db<{ hash: string }[]>`SELECT hash FROM audit WHERE seq = ${seq}`;
    return row?.hash;
  }

  /** Walks the chain in order, a page at a time; `key` undefined checks only its plain part. */
  private async checkChain(db: Sql | Tx, key: AuditKey | undefined) {
    const checker = new ChainChecker(key);
    let going = true;
    for await (const rows of db<AuditRow[]>`SELECT * FROM audit ORDER BY seq`.cursor(1000)) {
      for (const row of rows) if (going) going = checker.add(row);
      if (!going) break;
    }
    return checker.result();
  }

  async auditList(options: {
    limit?: number;
    sinceMs?: number;
    action?: string;
    actor?: string;
  }): Promise<AuditEntry[]> {
    // LIKE with an escape character, so a "_" or "%" in the filter matches itself and not any character.
    const prefix = `${(options.action ?? "").replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const rows = await this.run(
      () => this.sql<AuditRow[]>`SELECT * FROM audit WHERE time >= ${new Date(options.sinceMs ?? 0).toISOString()}
        AND action LIKE ${prefix} ESCAPE '\\' AND (${options.actor ?? null}::text IS NULL OR actor = ${options.actor ?? null})
        ORDER BY seq DESC LIMIT ${options.limit ?? 100}`,
    );
    return rows.reverse().map(toEntry);
  }

  async auditDecision(requestId: string): Promise<Record<string, unknown> | undefined> {
    const [row] = await this.run(
      () => this.sql<{ detail: string | null }[]>`SELECT detail FROM audit WHERE request_id = ${requestId}
        AND action LIKE 'route.%' ORDER BY seq DESC LIMIT 1`,
    );
    return row?.detail ? (JSON.parse(row.detail) as Record<string, unknown>) : undefined;
  }

  /** Records `audit.head` and returns that entry's keyed head (this append's own, whatever other replicas write). */
  async auditExportHead(actor: string): Promise<AuditHead> {
    const head = await this.run(() =>
      this.sql.begin((tx) =>
        this.append(tx, [{ event: { actor, action: "audit.head" }, time: new Date().toISOString() }]),
      ),
    );
    this.committed(head, true);
    return head;
  }

  async auditAcknowledge(seq: number, actor: string, why: string): Promise<void> {
    const [row] = await this.run(() => this.sql<{ action: string }[]>`SELECT action FROM audit WHERE seq = ${seq}`);
    await this.appendAudit(
      [{ event: acknowledgeEvent(seq, row?.action, actor, why), time: new Date().toISOString() }],
      true,
    );
  }

  /**
   * The same checks as the SQLite trail's (auditChain.ts): the keyed chain, the head row, this replica's witness, a
   * head the owner kept, the keys table and the ledger, all read in one snapshot, so entries appended meanwhile by
   * other replicas do not look like a broken chain.
   */
  async auditVerify(options: { head?: AuditHead } = {}): Promise<AuditVerification> {
    const problems: string[] = [];
    let key: AuditKey | undefined;
    try {
      key = this.key ?? existingAuditKey(this.auditSource);
    } catch (error) {
      problems.push((error as Error).message);
    }
    return this.run(() =>
      this.sql.begin("ISOLATION LEVEL REPEATABLE READ READ ONLY", async (tx) => {
        const chain = await this.checkChain(tx, key);
        problems.push(...chain.problems);
        const end = { seq: chain.entries, hash: chain.head };
        const [headRow] = await tx<{ seq: number; hash: string }[]>`SELECT seq, hash FROM audit_head WHERE id = 1`;
        const headProblem = headRowProblem(chain, headRow);
        if (headProblem) problems.push(headProblem);
        if (key) {
          const witness = await witnessProblem(
            key,
            this.witness,
            end,
            { keyed: chain.keyed, pending: this.witnessWriter.pending },
            (seq) => this.hashAt(tx, seq),
          );
          if (witness) problems.push(witness.problem);
          if (options.head) {
            const hashAt = await this.hashAt(tx, options.head.seq);
            const owner = compareHead(key, options.head, end, "the head you kept", hashAt);
            if (owner) problems.push(owner);
          }
        } else if (options.head || chain.keyed) {
          problems.push(missingKeyProblem(this.auditSource));
        }
        const ledger = (await tx.unsafe(unexplainedLedgerRows)) as unknown as UnexplainedLedgerRow[];
        const keys = await tx<KeyTableRow[]>`SELECT * FROM keys ORDER BY created_at`;
        problems.push(...chain.unacknowledgedCuts, ...keyProblems(key, chain.keys, keys), ...ledgerProblems(ledger));
        return verdict(chain, problems);
      }),
    );
  }

  async status(): Promise<StoreStatus> {
    const [row] = await this.run(
      () => this.sql<{ version: number }[]>`SELECT version FROM freehold_schema WHERE id = 1`,
    );
    return {
      engine: "postgres",
      location: redactUrl(this.url),
      schemaVersion: row?.version ?? 0,
      latestVersion: postgresMigrations.length,
    };
  }

  /** The raw connection pool, for `freehold db migrate --to` (bulk copy) and tests. */
  get connection(): Sql {
    return this.sql;
  }

  async close(): Promise<void> {
    // The witness's newest head (a per-request batch may have left it to be written soon), after a write in flight.
    await this.witnessWriter.idle();
    this.witnessWriter.settle();
    await this.sql.end({ timeout: 5 });
  }
}
