import type postgres from "postgres";
import { InvalidRequestError, NotFoundError } from "../core/errors.js";
import { secretFingerprint } from "./auditChecks.js";
import {
  activeKey,
  type KeyChangeBy,
  type KeyRecord,
  type KeyRow,
  type KeySettings,
  keyChanges,
  keyCreateEvent,
  keyRevokeEvent,
  keyUpdateEvent,
  mintKey,
  presentedHash,
  toRecord,
} from "./keys.js";
import type { PostgresAuditTrail } from "./postgresAudit.js";
import type { Db, PostgresDatabase } from "./postgresDatabase.js";

/** API keys on PostgreSQL: every change commits with the audit entry that describes it. */
export class PostgresKeys {
  constructor(
    private readonly db: PostgresDatabase,
    private readonly audit: PostgresAuditTrail,
  ) {}

  async any(): Promise<boolean> {
    return this.db.run(async () => (await this.db.sql`SELECT EXISTS (SELECT 1 FROM keys) AS found`)[0]!.found === true);
  }

  async resolve(secret: string, now: number): Promise<KeyRecord> {
    const hash = presentedHash(secret);
    const [row] = await this.db.run(
      () => this.db.sql<KeyRow[]>`SELECT * FROM keys WHERE hash = ${hash.toString("hex")}`,
    );
    return activeKey(row, hash, now);
  }

  private async findKey(db: Db, idOrName: string): Promise<KeyRecord | undefined> {
    const [row] = await db<
      KeyRow[]
    >`SELECT * FROM keys WHERE id = ${idOrName} OR (name = ${idOrName} AND revoked_at IS NULL)
      ORDER BY revoked_at IS NULL DESC LIMIT 1`;
    return row ? toRecord(row) : undefined;
  }

  async get(idOrName: string): Promise<KeyRecord> {
    const key = await this.db.run(() => this.findKey(this.db.sql, idOrName));
    if (!key)
      throw new NotFoundError(`no key named or with id ${JSON.stringify(idOrName.slice(0, 80))}`, "key_not_found");
    return key;
  }

  async list(includeRevoked: boolean): Promise<KeyRecord[]> {
    const rows = await this.db.run(
      () => this.db.sql<
        KeyRow[]
      >`SELECT * FROM keys ${includeRevoked ? this.db.sql`` : this.db.sql`WHERE revoked_at IS NULL`}
        ORDER BY created_at, name`,
    );
    return rows.map(toRecord);
  }

  async create(name: string, settings: KeySettings, by: KeyChangeBy): Promise<{ secret: string; key: KeyRecord }> {
    const minted = mintKey(name, settings);
    const row = { id: minted.id, name, hash: minted.hash, created_at: minted.createdAt, ...minted.columns };
    const fingerprint = secretFingerprint(this.audit.currentKey(), minted.hash);
    try {
      const key = await this.audit.audited(async (tx) => {
        await tx`INSERT INTO keys ${tx(row as Record<string, postgres.SerializableParameter>)}`;
        const key = (await this.findKey(tx, minted.id))!;
        return { result: key, event: keyCreateEvent(key, fingerprint, by) };
      });
      return { secret: minted.secret, key };
    } catch (error) {
      // The active-name index is the arbiter when two replicas create the same name at once.
      if ((error as { code?: string }).code === "23505")
        throw new InvalidRequestError(`a key named ${name} already exists`, "name", "key_exists");
      throw error;
    }
  }

  async update(idOrName: string, settings: KeySettings, by: KeyChangeBy): Promise<KeyRecord> {
    const key = await this.get(idOrName);
    const changes = keyChanges(key, settings);
    if (Object.keys(changes).length === 0) return key;
    return this.audit.audited(async (tx) => {
      await tx`UPDATE keys SET ${tx(changes as Record<string, postgres.SerializableParameter>)} WHERE id = ${key.id}`;
      const updated = (await this.findKey(tx, key.id))!;
      return { result: updated, event: keyUpdateEvent(updated, settings, by) };
    });
  }

  async revoke(idOrName: string, by: KeyChangeBy): Promise<KeyRecord> {
    const key = await this.get(idOrName);
    return this.audit.audited(async (tx) => {
      await tx`UPDATE keys SET revoked_at = ${new Date().toISOString()} WHERE id = ${key.id} AND revoked_at IS NULL`;
      return { result: (await this.findKey(tx, key.id))!, event: keyRevokeEvent(key, by) };
    });
  }
}
