/**
 * How long an idle model stays loaded, with Ollama's semantics: the last request's `keep_alive` wins; a negative
 * duration keeps it forever, 0 unloads it as soon as its last request ends, anything else arms a timer.
 */
export class KeepAlive {
  private timer: NodeJS.Timeout | undefined;
  private expires: number | null = null;

  /** `durationMs`: the default, replaced by each request that names its own. */
  constructor(
    private durationMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** A request's `keep_alive` (undefined keeps the current one). */
  set(durationMs: number | undefined): void {
    if (durationMs !== undefined) this.durationMs = durationMs;
  }

  get duration(): number {
    return this.durationMs;
  }

  /** When the model unloads if it stays idle (epoch ms); null while in use or kept forever. */
  get expiresAt(): number | null {
    return this.expires;
  }

  /**
   * The model just went idle: unloads it now (0), never (negative), or after the duration. The timer does not hold
   * the process open.
   */
  idle(unload: () => void): void {
    this.cancel();
    if (this.durationMs < 0) return;
    if (this.durationMs === 0) {
      unload();
      return;
    }
    this.expires = this.now() + this.durationMs;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.expires = null;
      unload();
    }, this.durationMs);
    this.timer.unref();
  }

  /** The model is in use again (or going away). */
  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.expires = null;
  }
}
