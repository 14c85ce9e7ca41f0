import type { ChatEvent } from "../core/chat.js";
import { classifyText } from "./classifier.js";
import type { Detector, Finding } from "./detectors.js";

/**
 * Replaces each finding with a placeholder (`[EMAIL_1]`) before a request leaves, and puts the originals back in
 * what comes back. The same value gets the same placeholder everywhere in one request, so the upstream can refer
 * to it consistently.
 */
export class Redaction {
  private readonly byValue = new Map<string, string>();
  readonly originals = new Map<string, string>();
  private readonly counters = new Map<string, number>();
  readonly findings: Finding[] = [];

  constructor(private readonly detectors: readonly Detector[] = []) {}

  /** `text` with every finding replaced. */
  redact(text: string): string {
    return this.replace(text, classifyText(text, this.detectors));
  }

  /** `text` with the given findings (from a scan of exactly this text, earliest first) replaced. */
  replace(text: string, findings: readonly Finding[]): string {
    if (findings.length === 0) return text;
    let out = "";
    let last = 0;
    for (const finding of findings) {
      this.findings.push(finding);
      out += text.slice(last, finding.start) + this.placeholderFor(finding);
      last = finding.end;
    }
    return out + text.slice(last);
  }

  private placeholderFor(finding: Finding): string {
    const known = this.byValue.get(finding.value);
    if (known) return known;
    const label = finding.kind.toUpperCase().replace(/[^A-Z0-9]+/g, "_");
    const n = (this.counters.get(label) ?? 0) + 1;
    this.counters.set(label, n);
    const placeholder = `[${label}_${n}]`;
    this.byValue.set(finding.value, placeholder);
    this.originals.set(placeholder, finding.value);
    return placeholder;
  }

  /** Placeholders in `text` replaced by their originals. */
  restore(text: string): string {
    if (this.originals.size === 0 || !text.includes("[")) return text;
    return text.replace(/\[[A-Z0-9_]+_\d+\]/g, (placeholder) => this.originals.get(placeholder) ?? placeholder);
  }

  /**
   * The upstream's events with placeholders restored. Text is held back from a `[` that may start a placeholder
   * until it is complete or clearly not one, so a placeholder split across deltas is still restored.
   */
  async *restoreEvents(events: AsyncIterable<ChatEvent>): AsyncGenerator<ChatEvent> {
    const longest = Math.max(0, ...[...this.originals.keys()].map((p) => p.length));
    let pending = "";
    for await (const event of events) {
      if (event.type !== "text-delta") {
        if (pending) {
          yield { type: "text-delta", text: this.restore(pending) };
          pending = "";
        }
        yield event.type === "tool-call"
          ? { ...event, call: { ...event.call, arguments: this.restore(event.call.arguments) } }
          : event;
        continue;
      }
      pending += event.text;
      const open = pending.lastIndexOf("[");
      const cut = open >= 0 && !pending.includes("]", open) && pending.length - open < longest ? open : pending.length;
      const ready = pending.slice(0, cut);
      pending = pending.slice(cut);
      if (ready) yield { type: "text-delta", text: this.restore(ready) };
    }
    if (pending) yield { type: "text-delta", text: this.restore(pending) };
  }
}
