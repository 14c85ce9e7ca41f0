import { createHash, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import type { CallerKey } from "../core/context.js";
import { AuthenticationError, InvalidRequestError, NotFoundError } from "../core/errors.js";
import type { AuditLog } from "./audit.js";
import type { ControlDatabase } from "./database.js";

/** Every secret starts with this, so a leaked one is recognisable (secret scanners, logs). */
export const KEY_PREFIX = "fh-";
const secretPattern = /^fh-[A-Za-z0-9_-]{43}$/;
const namePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const modelPattern = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/;

/** A key's limits; null = unlimited. */
export interface KeyLimits {
  rpm: number | null;
  tpm: number | null;
  maxConcurrent: number | null;
  dailyTokens: number | null;
  monthlyTokens: number | null;
  /** USD per calendar month (UTC) for remote providers. */
  budgetUsd: number | null;
}

export interface KeyRecord extends CallerKey, KeyLimits {
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  /** Days stored content is kept (with storeContent); null = until deleted. */
  contentRetentionDays: number | null;
}

export interface KeySettings extends Partial<KeyLimits> {
  models?: readonly string[] | null;
  admin?: boolean;
  localOnly?: boolean;
  storeContent?: boolean;
  contentRetentionDays?: number | null;
  expiresAt?: string | null;
}

interface KeyRow {
  id: string;
  name: string;
  hash: string;
  admin: number;
  models: string | null;
  rpm: number | null;
  tpm: number | null;
  max_concurrent: number | null;
  daily_tokens: number | null;
  monthly_tokens: number | null;
  budget_usd: number | null;
  local_only: number;
  store_content: number;
  content_retention_days: number | null;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
}

function toRecord(row: KeyRow): KeyRecord {
  return {
    id: row.id,
    name: row.name,
    admin: row.admin === 1,
    models: row.models === null ? null : (JSON.parse(row.models) as string[]),
    localOnly: row.local_only === 1,
    storeContent: row.store_content === 1,
    rpm: row.rpm,
    tpm: row.tpm,
    maxConcurrent: row.max_concurrent,
    dailyTokens: row.daily_tokens,
    monthlyTokens: row.monthly_tokens,
    budgetUsd: row.budget_usd,
    contentRetentionDays: row.content_retention_days,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
  };
}

/** Who changes a key, and why: every change is recorded in the audit trail in the same transaction. */
export interface KeyChangeBy {
  actor: string;
  why?: string;
}

const internal: KeyChangeBy = { actor: "control" };

/** A key's settings as its audit entries record them (never the secret or its hash). */
export function keyState(key: KeyRecord): Record<string, unknown> {
  const { id: _id, createdAt: _created, revokedAt: _revoked, ...rest } = key;
  return rest as unknown as Record<string, unknown>;
}

function hashSecret(secret: string): Buffer {
  return createHash("sha256").update(secret).digest();
}

function checkCount(value: number | null | undefined, field: string, integer = true): void {
  if (value === null || value === undefined) return;
  if (!Number.isFinite(value) || value < 0 || (integer && !Number.isInteger(value)))
    throw new InvalidRequestError(`${field} must be a ${integer ? "whole " : ""}number of at least 0`, field);
}

function checkSettings(settings: KeySettings): void {
  if (settings.models) {
    for (const model of settings.models)
      if (!modelPattern.test(model))
        throw new InvalidRequestError(
          `models: ${JSON.stringify(model.slice(0, 80))} is not a model name (letters, digits, . _ : / -)`,
          "models",
        );
  }
  checkCount(settings.rpm, "rpm");
  checkCount(settings.tpm, "tpm");
  checkCount(settings.maxConcurrent, "max_concurrent");
  checkCount(settings.dailyTokens, "daily_tokens");
  checkCount(settings.monthlyTokens, "monthly_tokens");
  checkCount(settings.budgetUsd, "budget_usd", false);
  checkCount(settings.contentRetentionDays, "content_retention_days");
  if (settings.expiresAt && Number.isNaN(Date.parse(settings.expiresAt)))
    throw new InvalidRequestError("expires_at must be a date", "expires_at");
}

const columns: Record<keyof KeySettings, string> = {
  models: "models",
  admin: "admin",
  localOnly: "local_only",
  storeContent: "store_content",
  contentRetentionDays: "content_retention_days",
  expiresAt: "expires_at",
  rpm: "rpm",
  tpm: "tpm",
  maxConcurrent: "max_concurrent",
  dailyTokens: "daily_tokens",
  monthlyTokens: "monthly_tokens",
  budgetUsd: "budget_usd",
};

function columnValue(field: keyof KeySettings, value: unknown): unknown {
  if (value === undefined || value === null) return null;
  if (field === "models") return JSON.stringify(value);
  if (typeof value === "boolean") return value ? 1 : 0;
  return value;
}

/**
 * API keys. A secret is `fh-` + 256 random bits (base64url); only its SHA-256 is stored (a fast hash is enough for
 * a random 256-bit secret). Resolving compares hashes in constant time.
 */
export class KeyStore {
  private readonly byHash;
  private readonly anyKey;

  constructor(
    private readonly db: ControlDatabase,
    private readonly audit: AuditLog,
  ) {
    this.byHash = db.prepare<[string], KeyRow>("SELECT * FROM keys WHERE hash = ?");
    this.anyKey = db.prepare<[], { found: number }>("SELECT EXISTS(SELECT 1 FROM keys) AS found");
  }

  /** Creates a key and its `key.create` entry together; the secret is returned here once and never again. */
  create(name: string, settings: KeySettings = {}, by: KeyChangeBy = internal): { secret: string; key: KeyRecord } {
    if (!namePattern.test(name))
      throw new InvalidRequestError(
        `key name ${JSON.stringify(name.slice(0, 80))} is not allowed: use 1-64 letters, digits, '.', '_' or '-'`,
        "name",
      );
    checkSettings(settings);
    if (this.find(name)) throw new InvalidRequestError(`a key named ${name} already exists`, "name", "key_exists");
    const secret = `${KEY_PREFIX}${randomBytes(32).toString("base64url")}`;
    const id = `key_${randomUUID().replaceAll("-", "").slice(0, 16)}`;
    const fields = (Object.keys(columns) as (keyof KeySettings)[]).filter((field) => settings[field] !== undefined);
    const values = fields.map((field) => columnValue(field, settings[field]));
    const hash = hashSecret(secret).toString("hex");
    return this.audit.audited(() => {
      this.db
        .prepare(
          `INSERT INTO keys (id, name, hash, created_at${fields.map((f) => `, ${columns[f]}`).join("")})
           VALUES (?, ?, ?, ?${fields.map(() => ", ?").join("")})`,
        )
        .run(id, name, hash, new Date().toISOString(), ...values);
      const key = this.get(id);
      return {
        result: { secret, key },
        event: {
          actor: by.actor,
          action: "key.create",
          target: key.name,
          detail: {
            id,
            ...keyState(key),
            fingerprint: this.audit.fingerprint(hash),
            ...(by.why ? { why: by.why } : {}),
          },
        },
      };
    });
  }

  /** The key with this id or (active) name. */
  get(idOrName: string): KeyRecord {
    const key = this.find(idOrName);
    if (!key)
      throw new NotFoundError(`no key named or with id ${JSON.stringify(idOrName.slice(0, 80))}`, "key_not_found");
    return key;
  }

  private find(idOrName: string): KeyRecord | undefined {
    const row = this.db
      .prepare<[string, string], KeyRow>(
        "SELECT * FROM keys WHERE id = ? OR (name = ? AND revoked_at IS NULL) ORDER BY revoked_at IS NULL DESC LIMIT 1",
      )
      .get(idOrName, idOrName);
    return row ? toRecord(row) : undefined;
  }

  list(options: { includeRevoked?: boolean } = {}): KeyRecord[] {
    const rows = this.db
      .prepare<[], KeyRow>(
        `SELECT * FROM keys ${options.includeRevoked ? "" : "WHERE revoked_at IS NULL"} ORDER BY created_at, name`,
      )
      .all();
    return rows.map(toRecord);
  }

  /** Changes a key's settings and records the change with the key's whole new state (the trail can replay it). */
  update(idOrName: string, settings: KeySettings, by: KeyChangeBy = internal): KeyRecord {
    checkSettings(settings);
    const key = this.get(idOrName);
    if (key.revokedAt) throw new InvalidRequestError(`key ${key.name} is revoked and cannot be changed`, "name");
    const fields = (Object.keys(settings) as (keyof KeySettings)[]).filter(
      (field) => field in columns && settings[field] !== undefined,
    );
    if (fields.length === 0) return key;
    return this.audit.audited(() => {
      this.db
        .prepare(`UPDATE keys SET ${fields.map((f) => `${columns[f]} = ?`).join(", ")} WHERE id = ?`)
        .run(...fields.map((field) => columnValue(field, settings[field])), key.id);
      const updated = this.get(key.id);
      const changes = Object.fromEntries(fields.map((field) => [field, settings[field]]));
      return {
        result: updated,
        event: {
          actor: by.actor,
          action: "key.update",
          target: updated.name,
          detail: { id: key.id, changes, state: keyState(updated), ...(by.why ? { why: by.why } : {}) },
        },
      };
    });
  }

  revoke(idOrName: string, by: KeyChangeBy = internal): KeyRecord {
    const key = this.get(idOrName);
    return this.audit.audited(() => {
      if (!key.revokedAt)
        this.db.prepare("UPDATE keys SET revoked_at = ? WHERE id = ?").run(new Date().toISOString(), key.id);
      return {
        result: this.get(key.id),
        event: {
          actor: by.actor,
          action: "key.revoke",
          target: key.name,
          detail: { id: key.id, ...(by.why ? { why: by.why } : {}) },
        },
      };
    });
  }

  /** Whether any key was ever created (a server with keys, even revoked ones, is never open). */
  hasKeys(): boolean {
    return this.anyKey.get()?.found === 1;
  }

  /** The active key for a presented secret, or an AuthenticationError that never repeats the secret. */
  resolve(secret: string, now = Date.now()): KeyRecord {
    if (!secretPattern.test(secret))
      throw new AuthenticationError(
        `Incorrect API key provided: freehold keys look like ${KEY_PREFIX}… (create one with \`freehold keys create\`).`,
      );
    const hash = hashSecret(secret);
    const row = this.byHash.get(hash.toString("hex"));
    if (!row || !timingSafeEqual(Buffer.from(row.hash, "hex"), hash))
      throw new AuthenticationError("Incorrect API key provided: no such key on this server.");
    const key = toRecord(row);
    if (key.revokedAt) throw new AuthenticationError(`The API key ${key.name} was revoked.`, "key_revoked");
    if (key.expiresAt && Date.parse(key.expiresAt) <= now)
      throw new AuthenticationError(`The API key ${key.name} expired at ${key.expiresAt}.`, "key_expired");
    return key;
  }
}
