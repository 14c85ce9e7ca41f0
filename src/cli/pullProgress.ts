import cliProgress from "cli-progress";
import type { PullProgress } from "../supply/index.js";
import { formatSize } from "./humanize.js";

/**
 * Shows pull progress: on a terminal, a bar per file with bytes, rate and ETA (cli-progress); otherwise nothing
 * while it runs and one summary line at the end (logs stay clean).
 */
export class PullDisplay {
  private readonly bars = new Map<string, { bar: cliProgress.SingleBar; started: number; from: number }>();
  private multi: cliProgress.MultiBar | undefined;
  private readonly started = performance.now();
  private bytes = 0;

  constructor(private readonly interactive = process.stderr.isTTY === true) {}

  readonly onProgress = (progress: PullProgress): void => {
    if (progress.digest === undefined || progress.total === undefined) return;
    const completed = progress.completed ?? 0;
    if (!this.interactive) return;
    this.multi ??= new cliProgress.MultiBar(
      {
        format: " {file} [{bar}] {percentage}% | {done}/{size} | {rate} | ETA {eta_formatted}",
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
        etaBuffer: 50,
        stream: process.stderr,
      },
      cliProgress.Presets.shades_classic,
    );
    let entry = this.bars.get(progress.digest);
    if (!entry) {
      const bar = this.multi.create(progress.total, completed, this.payload(progress.status, 0, 0, progress.total));
      entry = { bar, started: performance.now(), from: completed };
      this.bars.set(progress.digest, entry);
    }
    const seconds = (performance.now() - entry.started) / 1000;
    const rate = seconds > 0 ? (completed - entry.from) / seconds : 0;
    entry.bar.update(completed, this.payload(progress.status, completed, rate, progress.total));
  };

  /** Records bytes fetched (for the summary). */
  downloaded(bytes: number): void {
    this.bytes += bytes;
  }

  /** Stops the bars; returns "N MB in S s (R MB/s)" for the summary line, or "nothing to download". */
  finish(): string {
    this.multi?.stop();
    this.multi = undefined;
    this.bars.clear();
    const seconds = (performance.now() - this.started) / 1000;
    if (this.bytes === 0) return "nothing to download";
    return `${formatSize(this.bytes)} in ${seconds.toFixed(1)} s (${formatSize(this.bytes / Math.max(seconds, 0.001))}/s)`;
  }

  private payload(status: string, done: number, rate: number, total: number) {
    return {
      file: status.replace(/^pulling /, ""),
      done: formatSize(done),
      size: formatSize(total),
      rate: `${formatSize(rate)}/s`,
    };
  }
}
