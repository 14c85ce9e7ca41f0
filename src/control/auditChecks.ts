import type { AuditEvent } from "../core/context.js";
import { type AuditChainResult, type AuditVerification, cutAction, genesis, type RecordedKey } from "./auditChain.js";
import { type AuditHead, type AuditKey, type AuditKeySource, headMac, readWitness } from "./auditKey.js";

/**
 * What `verify` checks the chain against, besides the chain itself (auditChain.ts): the keys table, the ledger, the
 * head row, the witness beside the key and a head the owner kept. Shared by both stores, as the chain's rules are.
 */

/** A keys table row as the cross-check reads it (the same columns in both stores). */
export interface KeyTableRow {
  id: string;
  name: string;
  hash: string;
  revoked_at: string | null;
  [column: string]: unknown;
}

/** A remote ledger row without its routing decision (the query is the same in both stores: unexplainedLedgerRows). */
export interface UnexplainedLedgerRow {
  request_id: string;
  provider: string;
  model: string;
  time_ms: number;
}

/** A key's settings as its audit entries record them (the fields of KeyRecord they cover) from its database row. */
const keyStateColumns: Record<string, (row: KeyTableRow) => unknown> = {
  name: (row) => row.name,
  admin: (row) => row.admin === 1,
  models: (row) => (row.models === null ? null : JSON.parse(String(row.models))),
  localOnly: (row) => row.local_only === 1,
  storeContent: (row) => row.store_content === 1,
  rpm: (row) => row.rpm,
  tpm: (row) => row.tpm,
  maxConcurrent: (row) => row.max_concurrent,
  dailyTokens: (row) => row.daily_tokens,
  monthlyTokens: (row) => row.monthly_tokens,
  budgetUsd: (row) => row.budget_usd,
  contentRetentionDays: (row) => row.content_retention_days,
  expiresAt: (row) => row.expires_at,
};

/** Names a key's stored secret hash in the trail without copying it there (a keyed digest of it). */
export function secretFingerprint(key: AuditKey, storedHash: string): string {
  return key.mac(`freehold-key-secret\n${storedHash}`).slice(0, 32);
}

/** Every key must have its creation entry, a revoked one its revocation, and match its last recorded state. */
export function keyProblems(
  key: AuditKey | undefined,
  recorded: Map<string, RecordedKey>,
  rows: Iterable<KeyTableRow>,
): string[] {
  const problems: string[] = [];
  for (const row of rows) {
    const seen = recorded.get(row.id);
    if (seen?.created === undefined) {
      problems.push(
        `key ${row.name} (${row.id}) has no key.create entry: it was added to the database directly, or its entry was removed`,
      );
      continue;
    }
    if (row.revoked_at !== null && seen.revoked === undefined)
      problems.push(`key ${row.name} (${row.id}) is revoked but has no key.revoke entry: its entry was removed`);
    if (row.revoked_at === null && seen.revoked !== undefined)
      problems.push(`key ${row.name} (${row.id}) was revoked (entry ${seen.revoked}) but is active in the database`);
    if (key && seen.fingerprint && secretFingerprint(key, row.hash) !== seen.fingerprint)
      problems.push(`key ${row.name} (${row.id}) has a different secret than the one it was created with`);
    if (!seen.state) continue;
    for (const [field, read] of Object.entries(keyStateColumns)) {
      if (!(field in seen.state)) continue;
      const now = JSON.stringify(read(row) ?? null);
      const then = JSON.stringify(seen.state[field] ?? null);
      if (now !== then)
        problems.push(
          `key ${row.name} (${row.id}): ${field} is ${now} in the database but ${then} in the trail: it was changed outside freehold`,
        );
    }
  }
  return problems;
}

/** Remote requests reach a provider only through a route, whose decision is recorded (before the ledger row). */
export const unexplainedLedgerRows = `
  SELECT request_id, provider, model, time_ms FROM ledger AS l
  WHERE l.provider != 'local' AND l.status != 429
    AND NOT EXISTS (SELECT 1 FROM audit AS a WHERE a.request_id = l.request_id AND a.action LIKE 'route.%')
  ORDER BY l.time_ms LIMIT 6`;

/**
 * A ledger row served by a remote provider (money spent, content sent) must have its routing decision in the trail:
 * a row added directly, or a decision removed, is named. Refusals at admission (429) come before any decision.
 */
export function ledgerProblems(rows: readonly UnexplainedLedgerRow[]): string[] {
  return rows
    .slice(0, 5)
    .map(
      (row) =>
        `ledger row ${row.request_id} (${row.provider}/${row.model}, ${new Date(row.time_ms).toISOString()}) has no route.* entry: a remote request's routing decision is always recorded, so the row was added directly or its entry removed`,
    )
    .concat(rows.length > 5 ? ["…and more ledger rows without their route.* entry"] : []);
}

/**
 * How the trail disagrees with a head kept outside it (the witness or the owner's line); undefined if it agrees.
 * `hashAt` is the hash the trail holds at `head.seq` (undefined: no such entry), read by the store.
 */
export function compareHead(
  key: AuditKey,
  head: AuditHead,
  end: { seq: number },
  what: string,
  hashAt: string | undefined,
): string | undefined {
  if (head.keyId !== key.id)
    return `${what} was made with audit key ${head.keyId}, not the configured key ${key.id}: a different key (FREEHOLD_AUDIT_KEY / FREEHOLD_AUDIT_KEY_FILE) or a forged head`;
  if (headMac(key, head) !== head.mac)
    return `${what} does not carry the audit key's signature: it was forged or edited`;
  if (head.seq > end.seq)
    return `the trail ends at entry ${end.seq} but ${what} records entry ${head.seq} (${head.time}): the newest entries were deleted or the database was replaced by an older copy (or lost in a power loss, docs/control.md)`;
  if (head.seq === 0) return undefined;
  if (hashAt !== head.hash)
    return `entry ${head.seq} is not the one ${what} records (${head.time}): the trail was rewritten from there or before, or the database was replaced by another copy`;
  return undefined;
}

export interface WitnessProblem {
  problem: string;
  witness?: Omit<AuditHead, "mac" | "keyId">;
  trailEnd: number;
}

/**
 * What is wrong between the trail's end and the witness file (undefined: nothing, or no witness on an unkeyed trail).
 * `hashAt` reads the trail's hash at an entry (the store's query); `pending`: a witness of ours is still being written.
 */
export async function witnessProblem(
  key: AuditKey,
  file: string,
  end: { seq: number },
  state: { keyed: boolean; pending: boolean },
  hashAt: (seq: number) => string | undefined | Promise<string | undefined>,
): Promise<WitnessProblem | undefined> {
  const witness = readWitnessOrProblem(file, end, state);
  if (!witness || "problem" in witness) return witness;
  const problem = compareHead(key, witness, end, `the witness (${file})`, await hashAt(witness.seq));
  return problem
    ? { problem, witness: { seq: witness.seq, hash: witness.hash, time: witness.time }, trailEnd: end.seq }
    : undefined;
}

/** witnessProblem for a store that reads synchronously (SQLite: inside its write transaction). */
export function witnessProblemSync(
  key: AuditKey,
  file: string,
  end: { seq: number },
  state: { keyed: boolean; pending: boolean },
  hashAt: (seq: number) => string | undefined,
): WitnessProblem | undefined {
  const witness = readWitnessOrProblem(file, end, state);
  if (!witness || "problem" in witness) return witness;
  const problem = compareHead(key, witness, end, `the witness (${file})`, hashAt(witness.seq));
  return problem
    ? { problem, witness: { seq: witness.seq, hash: witness.hash, time: witness.time }, trailEnd: end.seq }
    : undefined;
}

function readWitnessOrProblem(
  file: string,
  end: { seq: number },
  state: { keyed: boolean; pending: boolean },
): AuditHead | WitnessProblem | undefined {
  let witness: AuditHead | undefined;
  try {
    witness = readWitness(file);
  } catch (error) {
    return { problem: (error as Error).message, trailEnd: end.seq };
  }
  if (!witness)
    return state.keyed && !state.pending
      ? {
          problem: `the audit witness ${file} is missing (it is rewritten after every entry): it was deleted`,
          trailEnd: end.seq,
        }
      : undefined;
  return witness;
}

/** The `audit.cut` entry an append writes first when the witness disagrees with the trail. */
export function cutEvent(problem: WitnessProblem): AuditEvent {
  return { actor: "freehold", action: cutAction, detail: { ...problem } };
}

/** What verify reports about the key itself, when it cannot check the keyed part. */
export function missingKeyProblem(source: AuditKeySource): string {
  return `no audit key (${source.secret !== undefined ? "FREEHOLD_AUDIT_KEY" : source.file}): the keyed entries and heads cannot be checked`;
}

/** The head row must agree with the chain's end (else the newest entries were deleted and the row left alone). */
export function headRowProblem(
  chain: AuditChainResult,
  headRow: { seq: number; hash: string } | undefined,
): string | undefined {
  if (chain.problems.length > 0) return undefined;
  if ((headRow?.seq ?? 0) === chain.entries && (headRow?.hash ?? genesis) === chain.head) return undefined;
  return `the trail ends at entry ${chain.entries} but its head row says ${headRow?.seq ?? 0}: the newest entries were deleted`;
}

/** The verdict from every check's findings, in the order verify reports them. */
export function verdict(chain: AuditChainResult, problems: string[]): AuditVerification {
  return {
    ok: problems.length === 0,
    entries: chain.entries,
    head: chain.head,
    keyed: chain.keyed,
    ...(problems.length ? { problem: problems[0] } : {}),
    problems,
  };
}
