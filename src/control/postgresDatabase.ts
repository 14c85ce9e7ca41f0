import postgres from "postgres";
import { UnavailableError } from "../core/errors.js";
import { postgresMigrations } from "./migrations.js";
import { redactUrl } from "./store.js";

export type Sql = postgres.Sql<Record<string, never>>;
export type Tx = postgres.TransactionSql<Record<string, never>>;
/** A statement runs on the pool or inside a transaction alike. */
export type Db = Sql | Tx;

/** Held while migrating, so replicas starting together migrate once. */
const MIGRATION_LOCK = 1_717_017;

/** The driver's errors that mean "the database is not there" rather than "this statement is wrong". */
function unreachable(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code ?? "";
  return (
    /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EHOSTUNREACH|EPIPE|CONNECT_TIMEOUT|CONNECTION_CLOSED|CONNECTION_ENDED|CONNECTION_DESTROYED)$/.test(
      code,
    ) ||
    code.startsWith("08") || // connection exception
    code === "57P01" || // admin shutdown
    code === "57P03" // cannot connect now (starting up)
  );
}

/**
 * The connection pool of the PostgreSQL control plane, shared by its aggregates (keys, quotas, ledger, audit, evals):
 * it migrates the schema and turns an unreachable database into one 503 that names it.
 */
export class PostgresDatabase {
  readonly sql: Sql;

  constructor(
    readonly url: string,
    options: { max?: number } = {},
  ) {
    this.sql = postgres(url, {
      max: options.max ?? 10,
      prepare: true,
      connect_timeout: 5,
      idle_timeout: 60,
      onnotice: () => {},
      // Counters and milliseconds are BIGINT; they stay far below 2^53, so numbers (not strings) are exact.
      types: {
        bigint: {
          to: 20,
          from: [20],
          serialize: (value: number) => String(value),
          parse: (value: string) => Number(value),
        },
      } as unknown as Record<string, never>,
    }) as unknown as Sql;
  }

  async migrate(): Promise<void> {
    await this.sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
      await tx`CREATE TABLE IF NOT EXISTS freehold_schema (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)`;
      const [row] = await tx<{ version: number }[]>`SELECT version FROM freehold_schema WHERE id = 1`;
      const current = row?.version ?? 0;
      if (current > postgresMigrations.length)
        throw new Error(
          `the control database is at schema version ${current}, newer than this freehold knows (${postgresMigrations.length}); upgrade freehold`,
        );
      for (let version = current + 1; version <= postgresMigrations.length; version++)
        await tx.unsafe(postgresMigrations[version - 1]!).simple();
      await tx`INSERT INTO freehold_schema (id, version) VALUES (1, ${postgresMigrations.length})
               ON CONFLICT (id) DO UPDATE SET version = excluded.version`;
    });
  }

  async schemaVersion(): Promise<number> {
    const [row] = await this.run(
      () => this.sql<{ version: number }[]>`SELECT version FROM freehold_schema WHERE id = 1`,
    );
    return row?.version ?? 0;
  }

  /** A database that cannot be reached becomes a 503 that names it (without its password); others pass through. */
  wrap(error: unknown): unknown {
    if (unreachable(error))
      return new UnavailableError(
        `The control plane's database (${redactUrl(this.url)}) is unreachable, so no request can be metered; retry shortly`,
        "control_plane_unavailable",
        error,
      );
    return error;
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw this.wrap(error);
    }
  }
}
