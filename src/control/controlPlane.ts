import type { Config } from "../config/config.js";
import type { CallerKey, RequestContext } from "../core/context.js";
import { AuthenticationError, InvalidRequestError, PermissionError, RateLimitError } from "../core/errors.js";
import type { Admission, MeterOutcome, MeterTarget, MeterWork, RequestMeter } from "../core/metering.js";
import type { RequestLogEntry } from "../core/requestLog.js";
import { ControlAdmin } from "./admin.js";
import { type AuditKeySource, defaultAuditKeyFile } from "./auditKey.js";
import { AuditTrail } from "./auditTrail.js";
import type { ControlDatabase } from "./database.js";
import type { KeyRecord } from "./keys.js";
import { createLogger, type Logger } from "./logger.js";
import { Metrics } from "./metrics.js";
import { PostgresStore } from "./postgresStore.js";
import { loadPriceTable, type PriceTable } from "./prices.js";
import { LEASE_RENEW_MS, type Reservation } from "./quotas.js";
import { SqliteStore } from "./sqliteStore.js";
import { type ControlStore, isPostgresUrl, redactUrl, type StoreStatus } from "./store.js";

export interface ControlPlaneOptions {
  home: string;
  logLevel?: string;
  /** Where log lines go (default stdout). */
  logOutput?: NodeJS.WritableStream;
  prices?: PriceTable;
  /**
   * postgres://… to keep the control plane in PostgreSQL (replicas sharing it); absent: $FREEHOLD_HOME/freehold.db.
   * Only ControlPlane.open can connect to one.
   */
  databaseUrl?: string;
  /** The audit chain's key (default: the file $FREEHOLD_HOME/audit.key); `auditSource(config)` builds it. */
  audit?: AuditKeySource;
}

/** The audit key as configured (FREEHOLD_AUDIT_KEY, FREEHOLD_AUDIT_KEY_FILE, or the home's key file). */
export function auditSource(config: Pick<Config, "home" | "auditKey" | "auditKeyFile">): AuditKeySource {
  return {
    file: config.auditKeyFile || defaultAuditKeyFile(config.home),
    ...(config.auditKey !== undefined ? { secret: config.auditKey } : {}),
  };
}

export type { RequestLogEntry };

/** What a request carries of its key: no secret hash, no limits (the store re-reads those under its lock). */
export function callerKey(key: KeyRecord): CallerKey {
  const { id, name, admin, models, localOnly, storeContent } = key;
  return { id, name, admin, models, localOnly, storeContent };
}

/** Opens the store a database URL names: PostgreSQL for postgres://…, the SQLite file in `home` without one. */
export async function openControlStore(
  home: string,
  databaseUrl: string | undefined,
  audit: AuditKeySource = { file: defaultAuditKeyFile(home) },
): Promise<ControlStore> {
  if (databaseUrl === undefined || databaseUrl === "") return new SqliteStore(home, audit);
  if (!isPostgresUrl(databaseUrl))
    throw new InvalidRequestError(
      `database.url (FREEHOLD_DATABASE_URL) must start with postgres:// or postgresql://, not ${JSON.stringify(redactUrl(databaseUrl).slice(0, 80))}; leave it unset for the SQLite file in FREEHOLD_HOME`,
      "database.url",
    );
  return PostgresStore.open(databaseUrl, { audit });
}

/**
 * The control plane: keys, quotas, the usage ledger, prices, the audit trail, metrics and logs over one store
 * (SQLite on one box, PostgreSQL for replicas; see store.ts). The gateway meters through it (RequestMeter); the HTTP
 * layer authenticates and reports through it.
 */
export class ControlPlane implements RequestMeter {
  readonly store: ControlStore;
  readonly audit: AuditTrail;
  readonly metrics = new Metrics();
  readonly prices: PriceTable;
  readonly logger: Logger;
  readonly admin: ControlAdmin;
  /** Whether any key was ever created, once seen (keys are never deleted, so a yes never turns back into a no). */
  private keysSeen = false;

  /** The SQLite control plane in `options.home`, or the given store. ControlPlane.open also connects to PostgreSQL. */
  constructor(options: ControlPlaneOptions, store?: ControlStore) {
    if (!store && options.databaseUrl)
      throw new Error("a database URL needs ControlPlane.open (connecting to it is asynchronous)");
    this.prices = options.prices ?? loadPriceTable(options.home);
    this.store = store ?? new SqliteStore(options.home, options.audit ?? { file: defaultAuditKeyFile(options.home) });
    this.logger = createLogger(options.logLevel ?? "info", options.logOutput);
    this.audit = new AuditTrail(this.store, (error) =>
      this.logger.error({ error: error instanceof Error ? error.message : String(error) }, "audit write failed"),
    );
    this.admin = new ControlAdmin(this);
    if (this.store instanceof SqliteStore) {
      this.store.quotas.sweepOrphans((pid) => {
        try {
          process.kill(pid, 0);
          return true;
        } catch (error) {
          return (error as NodeJS.ErrnoException).code === "EPERM";
        }
      });
      this.store.ledger.expireContent();
    }
    this.leaseTimer = setInterval(() => this.renewLeases(), LEASE_RENEW_MS);
    this.leaseTimer.unref();
  }

  private readonly leaseTimer: NodeJS.Timeout;

  /** Keeps this start's running requests' reservations alive (they expire only if this process stops renewing). */
  private renewLeases(): void {
    this.store.renewLeases(Date.now()).catch((error: unknown) => {
      this.logger.warn({ error: error instanceof Error ? error.message : String(error) }, "lease renewal failed");
    });
  }

  /** Opens the control plane on the store `options.databaseUrl` names (PostgreSQL), else on SQLite. */
  static async open(options: ControlPlaneOptions): Promise<ControlPlane> {
    const store = await openControlStore(options.home, options.databaseUrl, options.audit);
    const plane = new ControlPlane(options, store);
    if (store.engine === "postgres") {
      await store.sweepOrphans(Date.now());
      await store.expireContent(Date.now());
    }
    return plane;
  }

  /** The SQLite store (its tables directly, for tests and `db migrate`); a clear error on PostgreSQL. */
  get sqlite(): SqliteStore {
    if (this.store instanceof SqliteStore) return this.store;
    throw new InvalidRequestError(
      "this needs the SQLite control database in FREEHOLD_HOME; run it without FREEHOLD_DATABASE_URL",
      "database.url",
    );
  }

  /** The SQLite database itself (tests read its tables). */
  get db(): ControlDatabase {
    return this.sqlite.db;
  }

  /** Readiness: the store answers and is at this freehold's schema; throws saying what is wrong otherwise. */
  async ready(): Promise<StoreStatus> {
    const status = await this.store.status();
    if (status.schemaVersion !== status.latestVersion)
      throw new Error(
        `the control database is at schema version ${status.schemaVersion}, this freehold writes ${status.latestVersion}`,
      );
    return status;
  }

  /** Whether the server must ask for keys: yes once any key was ever created. */
  async requiresKeys(): Promise<boolean> {
    if (!this.keysSeen) this.keysSeen = await this.store.hasKeys();
    return this.keysSeen;
  }

  /**
   * The caller for a presented secret: undefined on an open server (no keys ever created), otherwise the key or an
   * AuthenticationError. Error messages never repeat what was presented.
   */
  async authenticate(secret: string | undefined): Promise<CallerKey | undefined> {
    if (!(await this.requiresKeys())) return undefined;
    if (!secret)
      throw new AuthenticationError(
        "Missing API key: this server requires one. Send it as `Authorization: Bearer fh-…` or `x-api-key: fh-…`.",
        "missing_api_key",
      );
    return callerKey(await this.store.resolveKey(secret, Date.now()));
  }

  /** OpenAI's x-ratelimit-* headers for the caller's key (empty when it has no per-minute limits). */
  async rateLimitHeaders(key: { id: string }): Promise<Record<string, string>> {
    const record = await this.store.getKey(key.id);
    return this.store.rateLimitHeaders(record, Date.now());
  }

  /** Keys that count tokens or dollars need the prompt's true bound (tokenized); others reserve nothing by size. */
  async boundsTokens(context: RequestContext): Promise<boolean> {
    if (!context.key) return false;
    const key = await this.store.getKey(context.key.id);
    return key.tpm !== null || key.dailyTokens !== null || key.monthlyTokens !== null || key.budgetUsd !== null;
  }

  async admit(work: MeterWork, context: RequestContext, target: MeterTarget): Promise<Admission> {
    const startedMs = Date.now();
    const started = performance.now();
    const key = context.key ? await this.store.getKey(context.key.id) : undefined;
    // Any target that might answer (a route's fallbacks too) may cost money: reserve the costliest.
    const remote = [target, ...(work.candidates ?? [])].filter((candidate) => candidate.remote);
    const worstUsd = (completionTokens: number) =>
      Math.max(
        work.priceUsd ?? 0,
        ...remote.map((candidate) => this.prices.cost(candidate.model, work.promptTokenBound, completionTokens) ?? 0),
      );
    const unpriced = remote.find((candidate) => !this.prices.lookup(candidate.model));
    if (key && key.budgetUsd !== null && unpriced)
      throw new PermissionError(
        `The model '${unpriced.model}' (provider ${unpriced.provider}) has no price, so key ${key.name}'s budget cannot be enforced for it; add its price to prices.yaml`,
        "price_unknown",
      );
    let reservation: Reservation | undefined;
    if (key) {
      try {
        reservation = await this.store.reserve(
          key,
          { promptTokenBound: work.promptTokenBound, maxTokens: work.maxTokens, worstUsd },
          startedMs,
        );
      } catch (error) {
        if (error instanceof RateLimitError)
          await this.write(work, context, target, key, undefined, startedMs, started, {
            promptTokens: 0,
            completionTokens: 0,
            cachedTokens: 0,
            timeToFirstTokenMs: null,
            status: 429,
            errorCode: error.code,
          });
        throw error;
      }
    }
    let settled: Promise<void> | undefined;
    return {
      maxTokens: reservation ? reservation.maxTokens : work.maxTokens,
      settle: (outcome) => {
        settled ??= this.write(work, context, target, key, reservation, startedMs, started, outcome);
        return settled;
      },
    };
  }

  /** Settles the reservation and writes the ledger row (and opted-in content) in one transaction. */
  private async write(
    work: MeterWork,
    context: RequestContext,
    target: MeterTarget,
    key: KeyRecord | undefined,
    reservation: Reservation | undefined,
    startedMs: number,
    started: number,
    outcome: MeterOutcome,
  ): Promise<void> {
    target = outcome.servedBy ?? target;
    const durationMs = performance.now() - started;
    const { promptTokens, completionTokens } = outcome;
    const costUsd =
      outcome.costUsd ?? (target.remote ? (this.prices.cost(target.model, promptTokens, completionTokens) ?? 0) : 0);
    const localCostUsd = target.remote ? 0 : this.prices.energyCost(durationMs);
    const equivalentUsd = target.remote ? 0 : this.prices.equivalentCost(promptTokens, completionTokens);
    const now = Date.now();
    await this.store.settle({
      key,
      reservation,
      now,
      row: {
        requestId: context.requestId,
        timeMs: startedMs,
        keyId: key?.id ?? null,
        keyName: key?.name ?? null,
        api: context.api,
        route: context.route,
        kind: work.kind,
        model: target.model,
        provider: target.provider,
        promptTokens,
        completionTokens,
        cachedTokens: outcome.cachedTokens,
        ttftMs: outcome.timeToFirstTokenMs,
        durationMs,
        status: outcome.status,
        errorCode: outcome.errorCode ?? null,
        bytes: null,
        costUsd,
        localCostUsd,
        equivalentUsd,
        equivalentModel: target.remote ? null : this.prices.local.equivalentModel,
      },
      ...(key?.storeContent && work.content !== undefined
        ? {
            content: {
              keyId: key.id,
              expiresMs: key.contentRetentionDays === null ? null : now + key.contentRetentionDays * 86_400_000,
              request: work.content,
              response: outcome.responseText ?? "",
            },
          }
        : {}),
    });
    // An MCP call is counted by the MCP hub (freehold_mcp_calls_total), not as a model request.
    if (work.kind === "mcp-call") return;
    this.metrics.observeRequest({
      model: target.model,
      keyName: key?.name ?? null,
      provider: target.provider,
      status: outcome.status,
      promptTokens,
      completionTokens,
      durationMs,
      ttftMs: outcome.timeToFirstTokenMs,
      ...(outcome.draftTokens ? { draftTokens: outcome.draftTokens } : {}),
    });
  }

  private completed: (RequestLogEntry & { bytes: number })[] = [];

  /**
   * The HTTP layer's end of a request: its status and bytes reach the ledger row (if any), metrics and the log.
   * The answer has been sent by then; the ledger row itself was committed before its end. These finishing touches
   * are queued and written at the end of the event-loop turn, all of that turn's in one transaction.
   */
  completeRequest(entry: RequestLogEntry & { bytes: number }): void {
    this.completed.push(entry);
    if (this.completed.length === 1) setImmediate(() => this.flushCompleted());
  }

  private flushCompleted(): Promise<void> {
    const entries = this.completed;
    this.completed = [];
    if (entries.length === 0) return Promise.resolve();
    for (const entry of entries) {
      this.metrics.observeHttp(entry.api, entry.status);
      const { bytes: _bytes, ...line } = entry;
      this.logger.info(line, "request");
    }
    return this.store.completeRequests(entries).catch((error) => {
      this.logger.error({ error: error instanceof Error ? error.message : String(error) }, "ledger completion failed");
    });
  }

  async close(): Promise<void> {
    clearInterval(this.leaseTimer);
    await this.flushCompleted();
    await this.audit.flush().catch(() => {});
    await this.store.close();
  }
}
