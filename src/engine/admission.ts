import { OverloadedError } from "../core/errors.js";

interface Waiter {
  admit: () => void;
  reject: (error: unknown) => void;
}

export interface AdmissionOptions {
  /** The model's name, for messages. */
  name: string;
  /** Requests that may wait when every slot is busy; past it, 503 `queue_full` at once. */
  maxQueue: number;
  /** How long a request may wait for a slot before a 503 `queue_timeout`, ms. */
  timeoutMs: number;
}

/**
 * One model's admission: at most `capacity` requests run at once (one per sequence of its runner); the rest wait in
 * FIFO order, bounded in number and in time. A client that gives up (its signal) leaves the queue at once.
 */
export class AdmissionQueue {
  /** Requests admitted (running). */
  private running = 0;
  private readonly waiting: Waiter[] = [];

  constructor(private readonly options: AdmissionOptions) {}

  get active(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Nothing runs and nothing waits. */
  get idle(): boolean {
    return this.running === 0 && this.waiting.length === 0;
  }

  /** Counts a caller that holds the model without a sequence (a preload, a token count): it only keeps it loaded. */
  enter(): void {
    this.running++;
  }

  /** Resolves once the request may run; rejects with an OverloadedError (503) when full or waited too long. */
  async admit(capacity: number, signal?: AbortSignal): Promise<void> {
    if (this.running < capacity && this.waiting.length === 0) {
      this.running++;
      return;
    }
    if (this.waiting.length >= this.options.maxQueue) {
      throw new OverloadedError(
        `${this.options.name} is busy: all ${capacity} slot(s) are answering and ${this.waiting.length} request(s) are waiting; retry shortly`,
        "queue_full",
        2,
      );
    }
    signal?.throwIfAborted();
    await new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        admit: () => {
          cleanup();
          this.running++;
          resolve();
        },
        reject: (error) => {
          cleanup();
          reject(error);
        },
      };
      const leave = (error: unknown) => {
        const index = this.waiting.indexOf(waiter);
        if (index !== -1) this.waiting.splice(index, 1);
        waiter.reject(error);
      };
      const timer = setTimeout(
        () =>
          leave(
            new OverloadedError(
              `${this.options.name} stayed busy for ${Math.round(this.options.timeoutMs / 1000)} s while this request waited for a slot; retry later`,
              "queue_timeout",
              5,
            ),
          ),
        this.options.timeoutMs,
      );
      const onAbort = () => leave(signal?.reason ?? new Error("aborted"));
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(waiter);
    });
  }

  /**
   * A request ended: its sequence goes to the oldest waiter. Returns true when the model is now idle (nothing runs,
   * nothing waits), so the owner can start its keep-alive or reload it.
   */
  release(): boolean {
    this.running--;
    const next = this.waiting.shift();
    if (next) {
      next.admit();
      return false;
    }
    return this.running === 0;
  }
}
