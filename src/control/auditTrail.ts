import type { AuditEvent, AuditSink } from "../core/context.js";
import type { AuditEntry, AuditVerification } from "./audit.js";
import type { AuditHead } from "./auditKey.js";
import type { ControlStore } from "./store.js";

/**
 * The audit trail over whichever store holds it. Administrative actions are written before their caller goes on
 * (`record`); per-request entries (routing decisions) are queued and written at the end of the event-loop turn,
 * all of that turn's in one transaction (`recordSoon`), so the chain costs one commit per burst, not per request.
 */
export class AuditTrail implements AuditSink {
  private pending: { event: AuditEvent; time: string }[] = [];
  private flushScheduled = false;
  /** Whether the queued batch holds an administrative entry (its commit is then synced to disk). */
  private durable = false;
  /** The write in progress, so entries are appended in the order they were queued. */
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: ControlStore,
    private readonly onError: (error: unknown) => void = () => {},
  ) {}

  /** Appends an entry now; resolves once it is committed (rejects when the store fails). */
  record(event: AuditEvent): Promise<void> {
    this.pending.push({ event, time: new Date().toISOString() });
    this.durable = true;
    return this.flush();
  }

  recordSoon(event: AuditEvent): void {
    this.pending.push({ event, time: new Date().toISOString() });
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      // Like a failed record(): the request is not failed for it; what could not be written is reported.
      this.flush().catch(this.onError);
    });
  }

  /** Writes everything queued so far, after any write already in progress. */
  flush(): Promise<void> {
    this.flushScheduled = false;
    const batch = this.pending;
    const durable = this.durable;
    this.pending = [];
    this.durable = false;
    const write = this.writing.catch(() => {}).then(() => this.store.appendAudit(batch, durable));
    this.writing = write;
    return write;
  }

  async list(
    options: { limit?: number; sinceMs?: number; action?: string; actor?: string } = {},
  ): Promise<AuditEntry[]> {
    await this.flush();
    return this.store.auditList(options);
  }

  /** The last routing decision recorded for a request (what `freehold explain` shows once memory has moved on). */
  async decision(requestId: string): Promise<Record<string, unknown> | undefined> {
    await this.flush();
    return this.store.auditDecision(requestId);
  }

  /** Checks the trail (and, with `head`, a head the owner kept: `freehold audit verify --head`). */
  async verify(options: { head?: AuditHead } = {}): Promise<AuditVerification> {
    await this.flush();
    return this.store.auditVerify(options);
  }

  /**
   * Records that the owner exported the head and returns that entry's keyed head, for `freehold audit head` to print
   * as a line to keep somewhere the database's writers cannot reach.
   */
  async exportHead(actor: string): Promise<AuditHead> {
    await this.flush();
    return this.store.auditExportHead(actor);
  }

  /** Accepts a recorded cut after the owner looked into it (a power loss, a restored backup), with the reason. */
  async acknowledge(seq: number, actor: string, why: string): Promise<void> {
    await this.flush();
    return this.store.auditAcknowledge(seq, actor, why);
  }
}
