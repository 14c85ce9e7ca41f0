import type { PrivacyPolicy } from "../config/fileConfig.js";
import type { RequestContext } from "../core/context.js";
import type { Outgoing } from "../core/egress.js";
import { FreeholdError } from "../core/errors.js";
import { countKinds } from "../privacy/classifier.js";
import type { Finding } from "../privacy/detectors.js";
import { mapStrings, type Slot, stringsOf } from "../privacy/jsonBody.js";
import { Redaction } from "../privacy/redactor.js";
import { type ScanResult, scanTexts } from "../privacy/scan.js";
import type { Decision } from "./decisions.js";
import type { Route, RoutingTable } from "./table.js";

/** What may leave: the body to send (the one checked, or its redacted copy), or why this target is left out. */
export type Verdict = { send: true; body: Record<string, unknown> } | { send: false; reason: string };

export function permissionError(message: string, code: string): FreeholdError {
  return new FreeholdError(message, { code, status: 403, type: "permission_error" });
}

/**
 * The owner's rules for one request, applied to each exact body a remote provider is about to send: `--offline`
 * and a local-only key forbid any remote call; otherwise every string of the body (keys included, the provider's
 * structural fields excepted) is scanned under the table's budget, and the key's or the route's policy decides.
 * A body too big or too slow to scan counts as sensitive (kind `unscannable`): blocked, kept local, and never sent
 * unredacted.
 */
export class EgressPolicy {
  readonly policy: PrivacyPolicy;
  /** Why nothing may leave for this request at all, or null. */
  readonly forbidden: { reason: string; code: string } | null;
  /** Placeholders shared by every body of the request, so the answer can be restored; null until something is redacted. */
  redaction: Redaction | null = null;
  private readonly cache = new Map<string, Finding[]>();
  private readonly explained = new Set<string>();

  constructor(
    private readonly table: RoutingTable,
    private readonly route: Route,
    context: RequestContext,
    private readonly decision: Decision | null = null,
  ) {
    const keyRules = context.key ? table.keys[context.key.name] : undefined;
    const keyLocalOnly = context.key?.localOnly === true || keyRules?.local_only === true;
    this.policy = keyRules?.privacy ?? route.policy;
    this.forbidden = table.offline
      ? { reason: "freehold runs offline: nothing may leave the machine", code: "egress_forbidden" }
      : keyLocalOnly
        ? { reason: `the API key ${context.key?.name ?? ""} is local-only`, code: "key_local_only" }
        : null;
    if (decision) decision.policy = keyLocalOnly ? "key local-only" : this.policy;
  }

  /**
   * Checks one outgoing body; throws 403 `privacy_blocked` when the policy blocks what it carries. `images`: how many
   * images the request carries (from the request itself, whatever shape the provider gives them): an image cannot be
   * scanned for personal data, so it counts as unscannable, and fails closed on every policy but allow.
   */
  async check(outgoing: Outgoing, images = 0): Promise<Verdict> {
    if (this.forbidden) return { send: false, reason: this.forbidden.reason };
    const identifiers = outgoing.identifiers ?? [];
    const slots = stringsOf(outgoing.body, outgoing.structural, identifiers);
    const scanned = images > 0 && this.policy !== "allow" ? null : await this.scan(slots);
    const scan: ScanResult = scanned ?? {
      findings: slots.map(() => []),
      unscannable: `${images} image${images === 1 ? "" : "s"}: an image cannot be scanned for personal data`,
    };
    if (images > 0 && scanned && !scanned.unscannable)
      scanned.unscannable = `${images} image${images === 1 ? "" : "s"}: an image cannot be scanned for personal data`;
    const findings = scan.findings.flat();
    const counts = countKinds(findings);
    if (scan.unscannable) counts.unscannable = 1;
    const described = Object.entries(counts)
      .map(([kind, count]) => `${kind}: ${count}`)
      .join(", ");
    this.record(counts, findings, described, scan.unscannable);
    if (described === "" || this.policy === "allow") return { send: true, body: outgoing.body };
    if (this.policy === "block")
      throw permissionError(
        scan.unscannable
          ? `This request could not be checked for personal data or secrets (${scan.unscannable}) and route ${this.route.name} blocks what it cannot clear: nothing was sent. Send a smaller request, or ask the owner to change the route's privacy policy.`
          : `This request carries personal data or secrets (${described}) and route ${this.route.name} blocks such requests: nothing was sent. Remove them, or ask the owner to change the route's privacy policy.`,
        "privacy_blocked",
      );
    if (this.policy === "local-only")
      return {
        send: false,
        reason: scan.unscannable
          ? `the request could not be scanned (${scan.unscannable}) and the policy is local-only`
          : `the request carries ${described} and the policy is local-only`,
      };
    if (scan.unscannable)
      return {
        send: false,
        reason: `the request could not be scanned (${scan.unscannable}), so it cannot be redacted`,
      };
    this.redaction ??= new Redaction();
    const redaction = this.redaction;
    let index = 0;
    const body = mapStrings(
      outgoing.body,
      outgoing.structural,
      (text) => redaction.replace(text, scan.findings[index++]!),
      identifiers,
    );
    if (this.decision) {
      const redacted = this.decision.redacted ?? {};
      this.decision.redacted = redacted;
      for (const [kind, count] of Object.entries(counts)) redacted[kind] = Math.max(redacted[kind] ?? 0, count);
    }
    this.explain(`remote targets get placeholders for ${described}; the originals are restored in the answer`);
    return { send: true, body: body as Record<string, unknown> };
  }

  /** Content with every detector; client-chosen ids without the "looks random" one (ids are random by design). */
  private async scan(slots: readonly { text: string; slot: Slot }[]): Promise<ScanResult> {
    const texts = slots.filter((slot) => slot.slot === "text").map((slot) => slot.text);
    const ids = slots.filter((slot) => slot.slot === "identifier").map((slot) => slot.text);
    const budget = this.table.scanBudget;
    const content = await scanTexts(texts, this.table.detectors, budget, this.cache);
    if (content.unscannable || ids.length === 0) return content;
    const idDetectors = this.table.detectors.filter((detector) => detector.kind !== "high-entropy");
    const used = texts.reduce((sum, text) => sum + text.length, 0);
    const idScan = await scanTexts(ids, idDetectors, { ...budget, maxChars: Math.max(0, budget.maxChars - used) });
    if (idScan.unscannable) return idScan;
    let t = 0;
    let i = 0;
    const findings = slots.map((slot) => (slot.slot === "text" ? content.findings[t++]! : idScan.findings[i++]!));
    return { findings, unscannable: null };
  }

  private record(
    counts: Record<string, number>,
    findings: readonly Finding[],
    described: string,
    unscannable: string | null,
  ): void {
    const decision = this.decision;
    if (!decision) return;
    // Bodies for different providers carry the same content: keep the largest count seen per kind.
    for (const [kind, count] of Object.entries(counts))
      decision.findings[kind] = Math.max(decision.findings[kind] ?? 0, count);
    decision.rules = [...new Set([...decision.rules, ...findings.map((finding) => finding.rule)])];
    if (unscannable) this.explain(`the request could not be scanned: ${unscannable}; it counts as sensitive`);
    if (described) this.explain(`the request carries ${described} (rules: ${decision.rules.join(", ") || "none"})`);
    else this.explain("no personal data or secrets found: remote targets allowed");
  }

  private explain(line: string): void {
    if (this.explained.has(line) || !this.decision) return;
    this.explained.add(line);
    this.decision.explanation.push(line);
  }
}
