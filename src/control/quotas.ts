import { randomUUID } from "node:crypto";
import { RateLimitError } from "../core/errors.js";
import type { ControlDatabase } from "./database.js";
import type { KeyLimits } from "./keys.js";

/** What a request without max_tokens may generate when its key has token limits (so its worst case is known). */
export const DEFAULT_TOKEN_CEILING = 4096;

export interface QuotaKey extends KeyLimits {
  id: string;
  name: string;
}

export interface Reservation {
  id: string;
  keyId: string;
  tokens: number;
  usd: number;
  /** The completion tokens the reservation allows (the request's max_tokens, or the ceiling chosen for it). */
  maxTokens: number | undefined;
}

export interface ReserveRequest {
  promptTokenBound: number;
  maxTokens: number | undefined;
  /** USD of the worst case, given the completion tokens allowed (0 for local requests). */
  worstUsd: (completionTokens: number) => number;
}

const minute = 60_000;

/**
 * How long a reservation stays valid without its process renewing it. The owning process renews its own every
 * LEASE_RENEW_MS, so only a dead (or frozen for minutes) process's reservations ever expire.
 */
export const LEASE_MS = 2 * minute;
export const LEASE_RENEW_MS = 30_000;

function utcDay(now: number): string {
  return new Date(now).toISOString().slice(0, 10);
}

function utcMonth(now: number): string {
  return new Date(now).toISOString().slice(0, 7);
}

function secondsToNextDay(now: number): number {
  const date = new Date(now);
  return Math.ceil((Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate() + 1) - now) / 1000);
}

function secondsToNextMonth(now: number): number {
  const date = new Date(now);
  return Math.ceil((Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1) - now) / 1000);
}

/** OpenAI's reset format: "20ms", "1s", "6m0s". */
export function formatReset(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.ceil(ms))}ms`;
  const seconds = Math.ceil(ms / 1000);
  return seconds < 60 ? `${seconds}s` : `${Math.floor(seconds / 60)}m${seconds % 60}s`;
}

/**
 * Per-key limits, all state in SQLite so every process sharing the database enforces the same numbers: token
 * buckets for requests and tokens per minute (refilling continuously), in-flight reservations for concurrency, and
 * per-day/per-month totals written in the same transaction as the ledger row. Callers run `reserve` and `settle`
 * inside an immediate transaction, so check-and-reserve is atomic across concurrent requests and processes.
 */
export class Quotas {
  private readonly bucketRow;
  private readonly saveBucket;
  private readonly reservedSums;
  private readonly total;
  private readonly addTotal;
  private readonly insertReservation;
  private readonly deleteReservation;

  private readonly expireReservations;
  private readonly renewReservations;
  /**
   * This start's id: reservations are tagged with it, not just the pid, because a restart can get the same pid
   * (PID 1 in a container) and must not mistake the dead start's reservations for its own.
   */
  readonly instance = `run_${randomUUID().replaceAll("-", "")}`;

  constructor(private readonly db: ControlDatabase) {
    this.insertReservation = db.prepare(
      "INSERT INTO reservations (id, key_id, tokens, usd, pid, created_ms, instance, lease_until_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    );
    this.expireReservations = db.prepare(
      "DELETE FROM reservations WHERE key_id = ? AND instance != ? AND lease_until_ms < ?",
    );
    this.renewReservations = db.prepare("UPDATE reservations SET lease_until_ms = ? WHERE instance = ?");
    this.deleteReservation = db.prepare("DELETE FROM reservations WHERE id = ?");
    this.bucketRow = db.prepare<[string, string], { level: number; updated_ms: number }>(
      "SELECT level, updated_ms FROM buckets WHERE key_id = ? AND kind = ?",
    );
    this.saveBucket = db.prepare(
      "INSERT INTO buckets (key_id, kind, level, updated_ms) VALUES (?, ?, ?, ?) ON CONFLICT (key_id, kind) DO UPDATE SET level = excluded.level, updated_ms = excluded.updated_ms",
    );
    this.reservedSums = db.prepare<[string], { tokens: number; usd: number; count: number }>(
      "SELECT COALESCE(SUM(tokens), 0) AS tokens, COALESCE(SUM(usd), 0) AS usd, COUNT(*) AS count FROM reservations WHERE key_id = ?",
    );
    this.total = db.prepare<[string, string], { tokens: number; cost_usd: number }>(
      "SELECT tokens, cost_usd FROM usage_totals WHERE key_id = ? AND period = ?",
    );
    this.addTotal = db.prepare(
      "INSERT INTO usage_totals (key_id, period, tokens, cost_usd) VALUES (?, ?, ?, ?) ON CONFLICT (key_id, period) DO UPDATE SET tokens = tokens + excluded.tokens, cost_usd = cost_usd + excluded.cost_usd",
    );
  }

  /** A bucket's level now: refilled at capacity per minute since it was last written, never above capacity. */
  private level(keyId: string, kind: "rpm" | "tpm", capacity: number, now: number): number {
    const row = this.bucketRow.get(keyId, kind);
    if (!row) return capacity;
    return Math.min(capacity, row.level + ((now - row.updated_ms) * capacity) / minute);
  }

  private usage(keyId: string, period: string): { tokens: number; costUsd: number } {
    const row = this.total.get(keyId, period);
    return { tokens: row?.tokens ?? 0, costUsd: row?.cost_usd ?? 0 };
  }

  /** Reserves the request's worst case or throws RateLimitError naming the limit. Run inside a transaction. */
  reserve(key: QuotaKey, request: ReserveRequest, now = Date.now()): Reservation {
    // Another start's reservations whose lease ran out: that start died (or froze) without settling them.
    this.expireReservations.run(key.id, this.instance, now);
    const reserved = this.reservedSums.get(key.id)!;
    const day = this.usage(key.id, `day:${utcDay(now)}`);
    const month = this.usage(key.id, `month:${utcMonth(now)}`);
    const rpmLevel = key.rpm === null ? Number.POSITIVE_INFINITY : this.level(key.id, "rpm", key.rpm, now);
    const tpmLevel = key.tpm === null ? Number.POSITIVE_INFINITY : this.level(key.id, "tpm", key.tpm, now);
    const tokenRoom = Math.min(
      tpmLevel,
      key.dailyTokens === null ? Number.POSITIVE_INFINITY : key.dailyTokens - day.tokens - reserved.tokens,
      key.monthlyTokens === null ? Number.POSITIVE_INFINITY : key.monthlyTokens - month.tokens - reserved.tokens,
    );
    const tokenLimited = key.tpm !== null || key.dailyTokens !== null || key.monthlyTokens !== null;
    const maxTokens =
      request.maxTokens ??
      (tokenLimited || key.budgetUsd !== null
        ? Math.max(1, Math.min(DEFAULT_TOKEN_CEILING, Math.floor(tokenRoom) - request.promptTokenBound))
        : undefined);
    const tokens = request.promptTokenBound + (maxTokens ?? 0);
    const usd = request.worstUsd(maxTokens ?? DEFAULT_TOKEN_CEILING);
    const worst = `this request's worst case is ${tokens} tokens (prompt up to ${request.promptTokenBound} + max_tokens ${maxTokens ?? "unset"})`;
    const refuse = (message: string, code: string, retryAfter: number): never => {
      throw new RateLimitError(`Rate limit reached for key ${key.name}: ${message}`, code, Math.max(1, retryAfter));
    };

    if (key.maxConcurrent !== null && reserved.count >= key.maxConcurrent)
      refuse(
        `${key.maxConcurrent} concurrent requests are already running; retry when one ends`,
        "concurrency_limit_exceeded",
        1,
      );
    if (key.rpm !== null && rpmLevel < 1)
      refuse(
        `${key.rpm} requests per minute`,
        "requests_per_minute_exceeded",
        ((1 - rpmLevel) * minute) / key.rpm / 1000,
      );
    if (key.tpm !== null) {
      if (tokens > key.tpm)
        refuse(
          `${worst}, more than its ${key.tpm} tokens per minute; lower max_tokens`,
          "tokens_per_minute_exceeded",
          60,
        );
      if (tpmLevel < tokens)
        refuse(
          `${key.tpm} tokens per minute (${worst})`,
          "tokens_per_minute_exceeded",
          ((tokens - tpmLevel) * minute) / key.tpm / 1000,
        );
    }
    if (key.dailyTokens !== null && day.tokens + reserved.tokens + tokens > key.dailyTokens)
      refuse(
        `${key.dailyTokens} tokens per day (${day.tokens} used, ${reserved.tokens} reserved by running requests; ${worst})`,
        "daily_tokens_exceeded",
        tokens > key.dailyTokens ? 86_400 : reserved.count > 0 ? 1 : secondsToNextDay(now),
      );
    if (key.monthlyTokens !== null && month.tokens + reserved.tokens + tokens > key.monthlyTokens)
      refuse(
        `${key.monthlyTokens} tokens per month (${month.tokens} used, ${reserved.tokens} reserved by running requests; ${worst})`,
        "monthly_tokens_exceeded",
        reserved.count > 0 ? 1 : secondsToNextMonth(now),
      );
    if (key.budgetUsd !== null && usd > 0 && month.costUsd + reserved.usd + usd > key.budgetUsd)
      refuse(
        `budget of $${key.budgetUsd} per month ($${month.costUsd.toFixed(4)} spent, $${reserved.usd.toFixed(4)} reserved; this request may cost up to $${usd.toFixed(4)})`,
        "budget_exceeded",
        reserved.count > 0 ? 1 : secondsToNextMonth(now),
      );

    if (key.rpm !== null) this.saveBucket.run(key.id, "rpm", rpmLevel - 1, now);
    if (key.tpm !== null) this.saveBucket.run(key.id, "tpm", tpmLevel - tokens, now);
    const id = `rsv_${randomUUID().replaceAll("-", "")}`;
    this.insertReservation.run(id, key.id, tokens, usd, process.pid, now, this.instance, now + LEASE_MS);
    return { id, keyId: key.id, tokens, usd, maxTokens };
  }

  /**
   * Replaces a reservation by what the request used: the totals grow by the actual tokens and cost, and the
   * tokens-per-minute bucket gets back what was reserved but not used. Run inside the ledger row's transaction.
   */
  settle(key: QuotaKey, reservation: Reservation, tokens: number, costUsd: number, now = Date.now()): void {
    this.deleteReservation.run(reservation.id);
    if (key.tpm !== null) {
      const level = this.level(key.id, "tpm", key.tpm, now);
      this.saveBucket.run(key.id, "tpm", Math.min(key.tpm, level + reservation.tokens - tokens), now);
    }
    this.record(key.id, tokens, costUsd, now);
  }

  /** Adds usage to the key's day and month totals (also for requests that reserved nothing). */
  record(keyId: string, tokens: number, costUsd: number, now = Date.now()): void {
    this.addTotal.run(keyId, `day:${utcDay(now)}`, tokens, costUsd);
    this.addTotal.run(keyId, `month:${utcMonth(now)}`, tokens, costUsd);
  }

  /** OpenAI's x-ratelimit-* headers for a key with per-minute limits (empty without them). */
  headers(key: QuotaKey, now = Date.now()): Record<string, string> {
    const headers: Record<string, string> = {};
    if (key.rpm !== null) {
      const level = this.level(key.id, "rpm", key.rpm, now);
      headers["x-ratelimit-limit-requests"] = String(key.rpm);
      headers["x-ratelimit-remaining-requests"] = String(Math.max(0, Math.floor(level)));
      headers["x-ratelimit-reset-requests"] = formatReset(((key.rpm - level) * minute) / Math.max(1, key.rpm));
    }
    if (key.tpm !== null) {
      const level = this.level(key.id, "tpm", key.tpm, now);
      headers["x-ratelimit-limit-tokens"] = String(key.tpm);
      headers["x-ratelimit-remaining-tokens"] = String(Math.max(0, Math.floor(level)));
      headers["x-ratelimit-reset-tokens"] = formatReset(((key.tpm - level) * minute) / Math.max(1, key.tpm));
    }
    return headers;
  }

  /** Extends the lease of this start's reservations (run every LEASE_RENEW_MS while the process lives). */
  renewLeases(now = Date.now()): number {
    return this.renewReservations.run(now + LEASE_MS, this.instance).changes;
  }

  /**
   * Drops reservations no running request holds, at start: another start's rows whose process died (kill -9), whose
   * pid is now this process's (a restart that got the same pid: that start is gone), or whose lease ran out (a pid
   * reused by an unrelated process). Rows of other live starts with valid leases stay.
   */
  sweepOrphans(isAlive: (pid: number) => boolean, now = Date.now()): number {
    const starts = this.db
      .prepare<[string], { instance: string; pid: number }>(
        "SELECT DISTINCT instance, pid FROM reservations WHERE instance != ?",
      )
      .all(this.instance);
    const remove = this.db.prepare("DELETE FROM reservations WHERE instance = ? AND pid = ?");
    let removed = this.db
      .prepare("DELETE FROM reservations WHERE instance != ? AND lease_until_ms < ?")
      .run(this.instance, now).changes;
    for (const { instance, pid } of starts)
      if (pid === process.pid || !isAlive(pid)) removed += remove.run(instance, pid).changes;
    return removed;
  }
}
