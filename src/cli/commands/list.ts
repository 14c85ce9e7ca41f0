import type { Command } from "commander";
import { digestHex, ModelStore } from "../../store/index.js";
import { commandConfig } from "../context.js";
import { formatRelativeTime, formatSize } from "../humanize.js";
import { outputFormat, printJson, printRows, withFormat } from "../output.js";

const formats = ["text", "json", "csv"] as const;

export function registerList(program: Command): void {
  withFormat(
    program.command("list").alias("ls").description("list the models in the store, most recently added first"),
    formats,
  ).action(async (options: { format?: string; json?: boolean }, command: Command) => {
    const format = outputFormat(options, formats);
    const store = new ModelStore({ home: commandConfig(command).home });
    const now = new Date();
    const models = await store.list();
    if (format === "json") return printJson({ models });
    const rows = models.map((model) => [
      model.name,
      digestHex(model.digest).slice(0, 12),
      formatSize(model.size),
      model.synthetic ? `${model.parameters} (synthetic)` : model.parameters,
      model.quantization,
      formatRelativeTime(model.modifiedAt, now),
    ]);
    printRows(format, ["NAME", "ID", "SIZE", "PARAMETERS", "QUANTIZATION", "MODIFIED"], rows);
  });
}
