import { userInfo } from "node:os";
import type { Command } from "commander";
import { type KeyRequest, keyView } from "../../control/admin.js";
import type { KeyRecord } from "../../control/keys.js";
import { print } from "../context.js";
import { openCommandControl } from "../controlPlane.js";
import { UsageError } from "../errors.js";
import { outputFormat, printJson, printRows } from "../output.js";

type Options = Record<string, string | boolean | undefined>;

function cliActor(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return "cli";
  }
}

function number(value: string | boolean | undefined, flag: string): number | null | undefined {
  if (value === undefined || typeof value === "boolean") return undefined;
  if (value === "none" || value === "unlimited") return null;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0)
    throw new UsageError(`${flag} must be a number of at least 0 (or "none"), not ${JSON.stringify(value)}`);
  return parsed;
}

/** The flags `create` and `update` share, as a key request (only what was given). */
function keyRequest(options: Options): KeyRequest {
  const request: KeyRequest = {};
  const set = <K extends keyof KeyRequest>(field: K, value: KeyRequest[K] | undefined) => {
    if (value !== undefined) request[field] = value;
  };
  if (typeof options.models === "string")
    set(
      "models",
      options.models === "any"
        ? null
        : options.models
            .split(",")
            .map((m) => m.trim())
            .filter(Boolean),
    );
  if (options.admin !== undefined) set("admin", options.admin === true);
  set("rpm", number(options.rpm, "--rpm"));
  set("tpm", number(options.tpm, "--tpm"));
  set("maxConcurrent", number(options.maxConcurrent, "--max-concurrent"));
  set("dailyTokens", number(options.dailyTokens, "--daily-tokens"));
  set("monthlyTokens", number(options.monthlyTokens, "--monthly-tokens"));
  set("budgetUsd", number(options.budgetUsd, "--budget-usd"));
  if (typeof options.expires === "string") set("expires", options.expires === "never" ? null : options.expires);
  if (options.localOnly !== undefined) set("localOnly", options.localOnly === true);
  if (options.storeContent !== undefined) set("storeContent", options.storeContent === true);
  set("contentRetentionDays", number(options.contentRetentionDays, "--content-retention-days"));
  return request;
}

function limits(key: KeyRecord): string {
  const parts = [
    key.rpm !== null ? `${key.rpm} rpm` : "",
    key.tpm !== null ? `${key.tpm} tpm` : "",
    key.maxConcurrent !== null ? `${key.maxConcurrent} at once` : "",
    key.dailyTokens !== null ? `${key.dailyTokens} tokens/day` : "",
    key.monthlyTokens !== null ? `${key.monthlyTokens} tokens/month` : "",
    key.budgetUsd !== null ? `$${key.budgetUsd}/month` : "",
  ].filter(Boolean);
  return parts.join(", ") || "none";
}

function withKeyFlags(command: Command): Command {
  return command
    .option("--models <names>", "models this key may use, comma-separated ('any' = all)")
    .option("--admin", "may call admin routes (pull, create, delete, keys, usage, audit, metrics)")
    .option("--rpm <n>", "requests per minute")
    .option("--tpm <n>", "tokens per minute (prompt + completion)")
    .option("--max-concurrent <n>", "requests running at once")
    .option("--daily-tokens <n>", "tokens per UTC day")
    .option("--monthly-tokens <n>", "tokens per UTC month")
    .option("--budget-usd <usd>", "USD per UTC month on remote providers")
    .option("--expires <when>", "a duration from now (30d, 12h) or a date; 'never' clears it")
    .option("--local-only", "requests on this key never leave the machine")
    .option("--store-content", "keep request and response content for this key (evaluation replay)")
    .option("--content-retention-days <n>", "delete stored content after this many days");
}

export function registerKeys(program: Command): void {
  const keys = program.command("keys").description("API keys: who may use this server, which models, how much");

  withKeyFlags(keys.command("create").description("create a key and print its secret (shown only once)"))
    .requiredOption("--name <name>", "a name for the key (shown in usage, logs and metrics)")
    .option("--why <reason>", "recorded in the audit trail")
    .action(async (options: Options, command: Command) => {
      const control = await openCommandControl(command);
      try {
        const { secret, key } = await control.admin.createKey(
          String(options.name),
          keyRequest(options),
          cliActor(),
          options.why as string | undefined,
        );
        print(secret);
        process.stderr.write(
          `created key ${key.name} (${key.id}${key.admin ? ", admin" : ""}; limits: ${limits(key)}). The secret above is shown only once: store it now.\n`,
        );
      } finally {
        await control.close();
      }
    });

  keys
    .command("list")
    .description("list keys (never their secrets)")
    .option("--all", "include revoked keys")
    .option("--format <format>", "output format: text, json, csv (default text)")
    .option("--json", "same as --format json")
    .action(async (options: Options, command: Command) => {
      const format = outputFormat(options, ["text", "json", "csv"]);
      const control = await openCommandControl(command);
      try {
        const list = await control.admin.listKeys(options.all === true);
        if (format === "json") return printJson(list.map(keyView));
        const rows = list.map((key) => [
          key.name,
          key.id,
          key.admin ? "admin" : "",
          key.models ? key.models.join(",") : "any",
          limits(key),
          key.expiresAt ?? "never",
          key.revokedAt ? `revoked ${key.revokedAt}` : "active",
        ]);
        printRows(format, ["NAME", "ID", "ROLE", "MODELS", "LIMITS", "EXPIRES", "STATE"], rows);
      } finally {
        await control.close();
      }
    });

  withKeyFlags(
    keys
      .command("update")
      .argument("<key>", "name or id")
      .description("change a key's scopes and limits ('none' removes a limit)"),
  )
    .option("--no-admin", "no longer an admin key")
    .option("--no-local-only", "requests may be routed to remote providers")
    .option("--no-store-content", "stop keeping content")
    .action(async (idOrName: string, options: Options, command: Command) => {
      const control = await openCommandControl(command);
      try {
        const key = await control.admin.updateKey(idOrName, keyRequest(options), cliActor());
        print(`updated key ${key.name}: limits ${limits(key)}; models ${key.models?.join(",") ?? "any"}`);
      } finally {
        await control.close();
      }
    });

  keys
    .command("revoke")
    .argument("<key>", "name or id")
    .option("--why <reason>", "recorded in the audit trail")
    .description("revoke a key: it stops working at once, also on a running server")
    .action(async (idOrName: string, options: Options, command: Command) => {
      const control = await openCommandControl(command);
      try {
        const key = await control.admin.revokeKey(idOrName, cliActor(), options.why as string | undefined);
        print(`revoked key ${key.name} (${key.id})`);
      } finally {
        await control.close();
      }
    });
}
