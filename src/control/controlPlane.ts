import type { Config } from "../config/config.js";
import type { CallerKey, RequestContext } from "../core/context.js";
import { AuthenticationError, PermissionError, RateLimitError } from "../core/errors.js";
import type { Admission, MeterOutcome, MeterTarget, MeterWork, RequestMeter } from "../core/metering.js";
import { ControlAdmin } from "./admin.js";
import { AuditLog } from "./audit.js";
import { type AuditKeySource, defaultAuditKeyFile } from "./auditKey.js";
import { type ControlDatabase, openControlDatabase } from "./database.js";
import { type KeyRecord, KeyStore } from "./keys.js";
import { Ledger } from "./ledger.js";
import { createLogger, type Logger } from "./logger.js";
import { Metrics } from "./metrics.js";
import { loadPriceTable, type PriceTable } from "./prices.js";
import { LEASE_RENEW_MS, Quotas, type Reservation } from "./quotas.js";

export interface ControlPlaneOptions {
  home: string;
  logLevel?: string;
  /** Where log lines go (default stdout). */
  logOutput?: NodeJS.WritableStream;
  prices?: PriceTable;
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

export interface RequestLogEntry {
  method: string;
  path: string;
  status: number;
  durationMs: number;
  requestId: string;
  api: string;
  key: string | null;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function callerKey(key: KeyRecord): CallerKey {
  return {
    id: key.id,
    name: key.name,
    admin: key.admin,
    models: key.models,
    localOnly: key.localOnly,
    storeContent: key.storeContent,
  };
}

/**
 * The control plane: keys, quotas, the usage ledger, prices, the audit trail, metrics and logs over one SQLite
 * database. The gateway meters through it (RequestMeter); the HTTP layer authenticates and reports through it.
 */
export class ControlPlane implements RequestMeter {
  readonly db: ControlDatabase;
  readonly keys: KeyStore;
  readonly quotas: Quotas;
  readonly ledger: Ledger;
  readonly audit: AuditLog;
  readonly metrics = new Metrics();
  readonly prices: PriceTable;
  readonly logger: Logger;
  readonly admin: ControlAdmin;

  constructor(options: ControlPlaneOptions) {
    this.prices = options.prices ?? loadPriceTable(options.home);
    this.db = openControlDatabase(options.home);
    this.audit = new AuditLog(this.db, options.audit ?? { file: defaultAuditKeyFile(options.home) });
    try {
      this.audit.checkKey();
    } catch (error) {
      this.db.close();
      throw error;
    }
    this.keys = new KeyStore(this.db, this.audit);
    this.quotas = new Quotas(this.db);
    this.ledger = new Ledger(this.db);
    this.admin = new ControlAdmin(this);
    this.logger = createLogger(options.logLevel ?? "info", options.logOutput);
    this.quotas.sweepOrphans(processAlive);
    this.ledger.expireContent();
    this.leaseTimer = setInterval(() => this.renewLeases(), LEASE_RENEW_MS);
    this.leaseTimer.unref();
  }

  private readonly leaseTimer: NodeJS.Timeout;

  /** Keeps this start's running requests' reservations alive (they expire only if this process stops renewing). */
  private renewLeases(): void {
    if (!this.db.open) return;
    try {
      this.db.transaction(() => this.quotas.renewLeases()).immediate();
    } catch (error) {
      this.logger.warn({ error: error instanceof Error ? error.message : String(error) }, "lease renewal failed");
    }
  }

  /** Whether the server must ask for keys: yes once any key was ever created. */
  requiresKeys(): boolean {
    return this.keys.hasKeys();
  }

  /**
   * The caller for a presented secret: undefined on an open server (no keys ever created), otherwise the key or an
   * AuthenticationError. Error messages never repeat what was presented.
   */
  authenticate(secret: string | undefined): CallerKey | undefined {
    if (!this.keys.hasKeys()) return undefined;
    if (!secret)
      throw new AuthenticationError(
        "Missing API key: this server requires one. Send it as `Authorization: Bearer fh-…` or `x-api-key: fh-…`.",
        "missing_api_key",
      );
    return callerKey(this.keys.resolve(secret));
  }

  /** OpenAI's x-ratelimit-* headers for the caller's key (empty when it has no per-minute limits). */
  rateLimitHeaders(key: { id: string }): Record<string, string> {
    const record = this.keys.get(key.id);
    return this.quotas.headers(record);
  }

  /** Keys that count tokens or dollars need the prompt's true bound (tokenized); others reserve nothing by size. */
  boundsTokens(context: RequestContext): boolean {
    if (!context.key) return false;
    const key = this.keys.get(context.key.id);
    return key.tpm !== null || key.dailyTokens !== null || key.monthlyTokens !== null || key.budgetUsd !== null;
  }

  admit(work: MeterWork, context: RequestContext, target: MeterTarget): Admission {
    const startedMs = Date.now();
    const started = performance.now();
    const key = context.key ? this.keys.get(context.key.id) : undefined;
    // Any target that might answer (a route's fallbacks too) may cost money: reserve the costliest.
    const remote = [target, ...(work.candidates ?? [])].filter((candidate) => candidate.remote);
    const worstUsd = (completionTokens: number) =>
      Math.max(
        0,
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
        reservation = this.db
          .transaction(() =>
            this.quotas.reserve(key, { promptTokenBound: work.promptTokenBound, maxTokens: work.maxTokens, worstUsd }),
          )
          .immediate();
      } catch (error) {
        if (error instanceof RateLimitError)
          this.write(work, context, target, key, undefined, startedMs, started, {
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
    let settled = false;
    return {
      maxTokens: reservation ? reservation.maxTokens : work.maxTokens,
      settle: (outcome) => {
        if (settled) return;
        settled = true;
        this.write(work, context, target, key, reservation, startedMs, started, outcome);
      },
    };
  }

  /** Settles the reservation and writes the ledger row (and opted-in content) in one transaction. */
  private write(
    work: MeterWork,
    context: RequestContext,
    target: MeterTarget,
    key: KeyRecord | undefined,
    reservation: Reservation | undefined,
    startedMs: number,
    started: number,
    outcome: MeterOutcome,
  ): void {
    target = outcome.servedBy ?? target;
    const durationMs = performance.now() - started;
    const { promptTokens, completionTokens } = outcome;
    const costUsd = target.remote ? (this.prices.cost(target.model, promptTokens, completionTokens) ?? 0) : 0;
    const localCostUsd = target.remote ? 0 : this.prices.energyCost(durationMs);
    const equivalentUsd = target.remote ? 0 : this.prices.equivalentCost(promptTokens, completionTokens);
    const now = Date.now();
    this.db
      .transaction(() => {
        if (key && reservation) this.quotas.settle(key, reservation, promptTokens + completionTokens, costUsd, now);
        this.ledger.insert({
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
        });
        if (key?.storeContent && work.content !== undefined) {
          const expires = key.contentRetentionDays === null ? null : now + key.contentRetentionDays * 86_400_000;
          this.ledger.storeContent(context.requestId, key.id, now, expires, work.content, outcome.responseText ?? "");
        }
      })
      .immediate();
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

  private flushCompleted(): void {
    const entries = this.completed;
    this.completed = [];
    if (entries.length === 0 || !this.db.open) return;
    try {
      this.db
        .transaction(() => {
          for (const entry of entries) this.ledger.complete(entry.requestId, entry.status, entry.bytes);
        })
        .immediate();
    } catch (error) {
      this.logger.error({ error: error instanceof Error ? error.message : String(error) }, "ledger completion failed");
    }
    for (const entry of entries) {
      this.metrics.observeHttp(entry.api, entry.status);
      const { bytes: _bytes, ...line } = entry;
      this.logger.info(line, "request");
    }
  }

  close(): void {
    clearInterval(this.leaseTimer);
    this.flushCompleted();
    this.audit.close();
    if (this.db.open) this.db.close();
  }
}
