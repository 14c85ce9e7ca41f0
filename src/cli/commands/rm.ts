import type { Command } from "commander";
import { errorMessage, StoreError } from "../../core/errors.js";
import { ModelStore } from "../../store/index.js";
import { auditCli } from "../audit.js";
import { commandConfig, print } from "../context.js";

export function registerRm(program: Command): void {
  program
    .command("rm")
    .description("remove models from the store (their files go too, unless another name still uses them)")
    .argument("<names...>", "the models' names")
    .action(async (names: string[], _options: unknown, command: Command) => {
      const config = commandConfig(command);
      const home = config.home;
      const store = new ModelStore({ home });
      // Remove what can be removed, then report every name that could not be.
      const failures: unknown[] = [];
      for (const name of names) {
        try {
          const removed = await store.remove(name);
          await auditCli(config, { action: "model.delete", target: removed.name });
          print(`deleted ${removed.name}`);
        } catch (error) {
          failures.push(error);
        }
      }
      if (failures.length === 1) throw failures[0];
      if (failures.length > 1) {
        const reasons = failures.map((failure) => `\n  ${errorMessage(failure)}`).join("");
        throw new StoreError(`${failures.length} models were not removed:${reasons}`);
      }
    });
}
