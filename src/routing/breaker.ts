/**
 * A circuit breaker per target: after `failures` failures in a row it opens and the target gets nothing for
 * `cooldownMs`; then one request goes through as a probe (half-open): success closes it, failure opens it again.
 */
export type BreakerState = "closed" | "open" | "half-open";

export class CircuitBreaker {
  private consecutiveFailures = 0;
  private openedAt = 0;
  private probing = false;
  state: BreakerState = "closed";

  constructor(
    private readonly failures: number,
    private readonly cooldownMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** May a request go to this target now? Claims the single probe slot when the cool-down has passed. */
  tryAcquire(): boolean {
    if (this.state === "closed") return true;
    if (this.state === "open" && this.now() - this.openedAt >= this.cooldownMs) this.state = "half-open";
    if (this.state === "half-open" && !this.probing) {
      this.probing = true;
      return true;
    }
    return false;
  }

  /** Milliseconds until the breaker lets a probe through (0 when it would now). */
  retryInMs(): number {
    return this.state === "open" ? Math.max(0, this.cooldownMs - (this.now() - this.openedAt)) : 0;
  }

  success(): void {
    this.consecutiveFailures = 0;
    this.probing = false;
    this.state = "closed";
  }

  failure(): void {
    this.consecutiveFailures++;
    this.probing = false;
    if (this.state === "half-open" || this.consecutiveFailures >= this.failures) {
      this.state = "open";
      this.openedAt = this.now();
    }
  }

  /**
   * The attempt ended for a reason that says nothing about the target (the client went away): neither a success
   * nor a failure, but a half-open breaker's probe slot is freed for the next request.
   */
  abandon(): void {
    this.probing = false;
  }

  /** A health probe answered: let the next request through as a probe instead of waiting out the cool-down. */
  healthy(): void {
    if (this.state === "open") this.state = "half-open";
  }
}
