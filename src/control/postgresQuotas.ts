import { AuthenticationError } from "../core/errors.js";
import { type KeyRow, toRecord } from "./keys.js";
import type { PostgresDatabase, Tx } from "./postgresDatabase.js";
import { insertLedgerRow } from "./postgresLedger.js";
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
import type { Settlement } from "./store.js";

/**
 * Quotas on PostgreSQL, for several replicas sharing one database. Admission locks the key's row (SELECT … FOR
 * UPDATE) and reads its limits and state in the same transaction; settlement takes the same lock, so two replicas
 * never both admit against the same room, and a revoked or changed key counts at once everywhere. A reservation
 * carries its start's `instance` and a lease that start renews (quotas.ts LEASE_MS): a replica killed mid-request
 * leaves its reservations behind, and on a shared database a process id says nothing about another machine.
 */
export class PostgresQuotas {
  constructor(
    private readonly db: PostgresDatabase,
    private readonly instance: string,
  ) {}

  async reserve(key: QuotaKey, request: ReserveRequest, now: number): Promise<Reservation> {
    return this.db.run(() =>
      this.db.sql.begin(async (tx) => {
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
    if (!key || !reservation) {
      await this.db.run(() => insertLedgerRow(this.db.sql, row));
      return;
    }
    const tokens = row.promptTokens + row.completionTokens;
    await this.db.run(() =>
      this.db.sql.begin(async (tx) => {
        // Pipelined like reserve: the lock, then the bucket read and the writes, sent in one round trip and run in
        // that order (so the bucket is read under the lock).
        const first = Promise.all([
          tx<KeyRow[]>`SELECT * FROM keys WHERE id = ${key.id} FOR UPDATE`.execute(),
          tx<{ level: number; updated_ms: number }[]>`SELECT level, updated_ms FROM buckets
            WHERE key_id = ${key.id} AND kind = 'tpm'`.execute(),
          tx`DELETE FROM reservations WHERE id = ${reservation.id}`.execute(),
          insertLedgerRow(tx, row).execute(),
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
    const rows = await this.db.run(
      () => this.db.sql<{ kind: string; level: number; updated_ms: number }[]>`SELECT kind, level, updated_ms
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

  async renewLeases(now: number): Promise<number> {
    const result = await this.db.run(
      () => this.db.sql`UPDATE reservations SET lease_until_ms = ${now + LEASE_MS} WHERE instance = ${this.instance}`,
    );
    return result.count;
  }

  /** A pid says nothing about another machine: only leases tell a dead replica's reservations from a live one's. */
  async sweepOrphans(now: number): Promise<number> {
    const result = await this.db.run(
      () => this.db.sql`DELETE FROM reservations WHERE instance != ${this.instance} AND lease_until_ms < ${now}`,
    );
    return result.count;
  }
}
