import { mkdirSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { migrate } from "./migrations.js";

export type ControlDatabase = Database.Database;

/** The control plane's one file: keys, quota state, ledger and audit trail. */
export function controlDatabasePath(home: string): string {
  return join(home, "freehold.db");
}

/**
 * Opens (creating and migrating) `$FREEHOLD_HOME/freehold.db`. WAL mode: readers never block the writer, and a
 * committed transaction is in the WAL file before `commit` returns, so killing the process loses nothing committed.
 */
export function openControlDatabase(home: string): ControlDatabase {
  mkdirSync(home, { recursive: true });
  const db = new Database(controlDatabasePath(home));
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma("busy_timeout = 5000");
  migrate(db);
  return db;
}
