import type { Command } from "commander";
import { digestHex, ModelStore } from "../../store/index.js";
import { commandConfig, print } from "../context.js";
import { formatRelativeTime, formatSize } from "../humanize.js";
import { formatTable } from "../table.js";

export function registerList(program: Command): void {
  program
    .command("list")
    .alias("ls")
    .description("list the models in the store, most recently added first")
    .action(async (_options: unknown, command: Command) => {
      const store = new ModelStore({ home: commandConfig(command).home });
      const now = new Date();
      const rows = (await store.list()).map((model) => [
        model.name,
        digestHex(model.digest).slice(0, 12),
        formatSize(model.size),
        model.synthetic ? `${model.parameters} (synthetic)` : model.parameters,
        model.quantization,
        formatRelativeTime(model.modifiedAt, now),
      ]);
      for (const line of formatTable(["NAME", "ID", "SIZE", "PARAMETERS", "QUANTIZATION", "MODIFIED"], rows)) {
        print(line);
      }
    });
}
