import type { AuditSink } from "../core/context.js";

/** Why a request went where it did: what `freehold explain REQUEST_ID` shows and the audit trail keeps. */
export interface Attempt {
  provider: string;
  model: string;
  remote: boolean;
  /** "served", or why this target did not serve: "timeout", "error", "circuit open", ... */
  outcome: string;
  error?: string;
  ms: number;
}

export interface Decision {
  requestId: string;
  at: string;
  api: string;
  path: string;
  key: string | null;
  model: string;
  /** The route the model name matched; null = no route, served by the local engine. */
  route: string | null;
  policy: string | null;
  /** Rules that fired and kinds found, with counts (never the values). */
  findings: Record<string, number>;
  rules: string[];
  /** Kinds and counts replaced by placeholders before the request left, when it was redacted. */
  redacted: Record<string, number> | null;
  /** Targets left out before trying, and why. */
  excluded: { provider: string; model: string; reason: string }[];
  attempts: Attempt[];
  servedBy: { provider: string; model: string; remote: boolean } | null;
  outcome: "served" | "refused" | "failed";
  /** One line per step, in plain words. */
  explanation: string[];
}

/** The most recent decisions in memory (bounded), each also sent to the audit sink when there is one. */
export class DecisionLog {
  private readonly entries = new Map<string, Decision>();

  constructor(
    private readonly capacity = 5000,
    private readonly audit?: AuditSink,
  ) {}

  record(decision: Decision): void {
    this.entries.delete(decision.requestId);
    this.entries.set(decision.requestId, decision);
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
    try {
      const audit = this.audit;
      (audit?.recordSoon ?? audit?.record)?.call(audit, {
        actor: decision.key ?? "anonymous",
        action: `route.${decision.outcome}`,
        ...(decision.servedBy ? { target: `${decision.servedBy.provider}/${decision.servedBy.model}` } : {}),
        requestId: decision.requestId,
        detail: { ...decision },
      });
    } catch {
      // The audit store failing must not fail the request; the decision is still in memory.
    }
  }

  get(requestId: string): Decision | undefined {
    return this.entries.get(requestId);
  }

  /** The newest decisions first (the console's routes page). */
  recent(limit: number): Decision[] {
    return [...this.entries.values()].slice(-limit).reverse();
  }
}
