import type { Command } from "commander";
import { controlDatabasePath } from "../../control/database.js";
import { SqliteStore } from "../../control/sqliteStore.js";
import { isPostgresUrl, redactUrl } from "../../control/store.js";
import { copySqliteToPostgres } from "../../control/storeCopy.js";
import { commandConfig, print } from "../context.js";
import { openCommandControl } from "../controlPlane.js";

export function registerDb(program: Command): void {
  const db = program.command("db").description("the control plane's database: where it is, and moving it");

  db.command("status")
    .description("which database holds keys, limits, ledger and audit; its schema version; whether the chain verifies")
    .action(async (_options: unknown, command: Command) => {
      const control = await openCommandControl(command);
      try {
        const status = await control.store.status();
        const verification = await control.audit.verify();
        const keys = await control.store.listKeys(true);
        print(`engine          ${status.engine}`);
        print(`location        ${status.location}`);
        print(
          `schema          ${status.schemaVersion} of ${status.latestVersion}${status.schemaVersion === status.latestVersion ? " (current)" : ""}`,
        );
        print(`keys            ${keys.length} (${keys.filter((key) => !key.revokedAt).length} active)`);
        print(
          `audit           ${verification.entries} entries, ${verification.ok ? "intact" : `NOT intact: ${verification.problem}`}`,
        );
        if (!verification.ok) process.exitCode = 1;
      } finally {
        await control.close();
      }
    });

  db.command("migrate")
    .description("copy this home's SQLite control plane (keys, ledger, audit, content, eval runs) into PostgreSQL")
    .requiredOption("--to <url>", "postgres://user:password@host:5432/db (an empty control plane)")
    .action(async (options: { to: string }, command: Command) => {
      if (!isPostgresUrl(options.to))
        throw new Error(
          `--to must be a postgres:// or postgresql:// URL, not ${JSON.stringify(redactUrl(options.to))}`,
        );
      const home = commandConfig(command).home;
      const source = new SqliteStore(home);
      try {
        const report = await copySqliteToPostgres(source, options.to);
        for (const [table, count] of Object.entries(report.rows)) print(`${table.padEnd(16)}${count}`);
        print(
          `copied ${controlDatabasePath(home)} to ${redactUrl(options.to)}; audit chain verified on both sides (${report.target.entries} entries, head ${report.target.head})`,
        );
        print("Point every replica at it: FREEHOLD_DATABASE_URL=… (or database.url in freehold.yaml).");
      } finally {
        await source.close();
      }
    });
}
