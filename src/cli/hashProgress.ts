import cliProgress from "cli-progress";
import { formatSize } from "./humanize.js";

/**
 * Progress of hashing (import, verify, adopt): every byte of a multi-GB model is read, which takes minutes. On a
 * terminal (stderr), a bar with bytes, rate and ETA; otherwise nothing while it runs, so logs stay clean. Either way
 * one summary line on stderr at the end: "hashed 4.7 GB in 21.3 s (221 MB/s)".
 */
export class HashDisplay {
  private bar: cliProgress.SingleBar | undefined;
  private readonly started = performance.now();
  private bytes = 0;

  constructor(
    private readonly label: string,
    private readonly interactive = process.stderr.isTTY === true,
  ) {}

  readonly onProgress = ({ doneBytes, totalBytes }: { doneBytes: number; totalBytes: number }): void => {
    this.bytes = doneBytes;
    if (!this.interactive) return;
    const seconds = (performance.now() - this.started) / 1000;
    const payload = {
      label: this.label,
      done: formatSize(doneBytes),
      size: formatSize(totalBytes),
      rate: `${formatSize(seconds > 0 ? Math.round(doneBytes / seconds) : 0)}/s`,
    };
    if (!this.bar) {
      this.bar = new cliProgress.SingleBar(
        {
          format: " {label} [{bar}] {percentage}% | {done}/{size} | {rate} | ETA {eta_formatted}",
          hideCursor: true,
          clearOnComplete: true,
          etaBuffer: 50,
          stream: process.stderr,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(totalBytes, doneBytes, payload);
    } else {
      this.bar.setTotal(totalBytes);
      this.bar.update(doneBytes, payload);
    }
  };

  /** Shows progress while `work` runs; the summary line only when it succeeded (a failure says why by itself). */
  async track<T>(work: Promise<T>): Promise<T> {
    try {
      const value = await work;
      this.finish(true);
      return value;
    } catch (error) {
      this.finish(false);
      throw error;
    }
  }

  /** Stops the bar and, after a success, writes the summary line (nothing when nothing was hashed). */
  private finish(succeeded: boolean): void {
    this.bar?.stop();
    this.bar = undefined;
    if (!succeeded || this.bytes === 0) return;
    const seconds = (performance.now() - this.started) / 1000;
    const rate = formatSize(Math.round(this.bytes / Math.max(seconds, 0.001)));
    process.stderr.write(`${this.label}: hashed ${formatSize(this.bytes)} in ${seconds.toFixed(1)} s (${rate}/s)\n`);
  }
}
