import { userInfo } from "node:os";
import type { Command } from "commander";
import { headLine, parseHeadLine } from "../../control/auditKey.js";
import { print } from "../context.js";
import { openCommandControl } from "../controlPlane.js";
import { UsageError } from "../errors.js";
import { outputFormat, printJson, printRows } from "../output.js";

function format(options: Record<string, string | undefined>): "text" | "json" {
  const value = options.format ?? "text";
  if (value !== "text" && value !== "json")
    throw new UsageError(`--format must be text or json, not ${JSON.stringify(value)}`);
  return value;
}

function actor(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return `cli:${String(process.getuid?.() ?? "unknown")}`;
  }
}

export function registerAudit(program: Command): void {
  const audit = program
    .command("audit")
    .description("the tamper-evident audit trail of administrative actions and routing");

  audit
    .command("verify")
    .description(
      "check the keyed chain, its witness, the keys table and (with --head) a head you kept: exits 1 if anything was edited, inserted, deleted, cut or rolled back",
    )
    .option("--head <line>", "the line `freehold audit head` printed earlier: the trail must still contain it")
    .option("--format <format>", "text or json", "text")
    .action(async (options: Record<string, string | undefined>, command: Command) => {
      const output = format(options);
      const head = options.head !== undefined ? parseHeadLine(options.head) : undefined;
      const control = await openCommandControl(command);
      try {
        const result = await control.audit.verify(head ? { head } : {});
        if (!result.ok) process.exitCode = 1;
        if (output === "json") return print(JSON.stringify(result, null, 2));
        if (result.ok) {
          const keyed = result.keyed ? "keyed" : "not keyed yet (written before keying; keyed from the next entry)";
          print(`audit trail intact: ${result.entries} entries, ${keyed}, head ${result.head}`);
          return;
        }
        print(
          `audit trail is NOT intact (${result.problems.length} problem${result.problems.length === 1 ? "" : "s"}):`,
        );
        for (const problem of result.problems) print(`- ${problem}`);
      } finally {
        await control.close();
      }
    });

  audit
    .command("head")
    .description(
      "record and print the trail's keyed head: keep the line somewhere the server's writers cannot reach, and check it later with `audit verify --head`",
    )
    .option("--format <format>", "text (the line) or json", "text")
    .action(async (options: Record<string, string | undefined>, command: Command) => {
      const output = format(options);
      const control = await openCommandControl(command);
      try {
        const head = await control.audit.exportHead(actor());
        const line = headLine(head);
        if (output === "json") return print(JSON.stringify({ ...head, line }, null, 2));
        print(line);
      } finally {
        await control.close();
      }
    });

  audit
    .command("acknowledge")
    .description("accept an audit.cut entry that `audit verify` names, once you know why (recorded with the reason)")
    .argument("<seq>", "the audit.cut entry's number")
    .requiredOption("--why <reason>", "what happened (recorded in the trail)")
    .action(async (seq: string, options: Record<string, string>, command: Command) => {
      const number = Number(seq);
      if (!Number.isInteger(number) || number < 1)
        throw new Error(`<seq> must be an entry number, not ${JSON.stringify(seq)}`);
      const control = await openCommandControl(command);
      try {
        await control.audit.acknowledge(number, actor(), options.why ?? "");
        print(`acknowledged entry ${number}`);
      } finally {
        await control.close();
      }
    });

  audit
    .command("list")
    .description("show the most recent entries")
    .option("--limit <n>", "how many", "50")
    .option("--format <format>", "output format: text, json, csv (default text)")
    .option("--json", "same as --format json")
    .action(async (options: Record<string, string>, command: Command) => {
      const format = outputFormat(options, ["text", "json", "csv"]);
      const limit = Number(options.limit);
      if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`--limit must be a whole number of at least 1`);
      const control = await openCommandControl(command);
      try {
        const entries = await control.audit.list({ limit });
        if (format === "json") return printJson(entries);
        const rows = entries.map((entry) => [
          String(entry.seq),
          entry.time,
          entry.actor,
          entry.action,
          entry.target ?? "",
          entry.detail && "why" in entry.detail ? String(entry.detail.why) : "",
        ]);
        printRows(format, ["SEQ", "TIME", "ACTOR", "ACTION", "TARGET", "WHY"], rows);
      } finally {
        await control.close();
      }
    });
}
