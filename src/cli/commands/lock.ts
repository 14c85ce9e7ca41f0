import { resolve } from "node:path";
import type { Command } from "commander";
import { ModelStore } from "../../store/index.js";
import { LOCKFILE_NAME, lockModels } from "../../supply/index.js";
import { commandConfig, print } from "../context.js";

export function registerLock(program: Command): void {
  program
    .command("lock")
    .description(`pin models byte for byte in ./${LOCKFILE_NAME} (digest, size, source, licence)`)
    .argument("[names...]", "the models to add or update (default: every model in the store, replacing the list)")
    .action(async (names: string[], _options: unknown, command: Command) => {
      const store = new ModelStore({ home: commandConfig(command).home });
      const path = resolve(LOCKFILE_NAME);
      const lockfile = await lockModels(store, path, names);
      for (const entry of lockfile.models) {
        const from =
          "hub" in entry.source ? `hf.co/${entry.source.hub}@${entry.source.commit.slice(0, 12)}` : entry.source.local;
        print(`${entry.name}  ${entry.digest}  ${from}`);
      }
      print(`wrote ${path} (${lockfile.models.length} model(s))`);
    });
}
