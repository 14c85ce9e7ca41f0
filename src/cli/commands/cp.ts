import type { Command } from "commander";
import { ModelStore, parseModelName } from "../../store/index.js";
import { auditCli } from "../audit.js";
import { commandConfig, print } from "../context.js";

export function registerCp(program: Command): void {
  program
    .command("cp")
    .description("give a model another name (both names share its files)")
    .argument("<source>", "the existing model's name")
    .argument("<destination>", "the new name (replaces the model it named, if any)")
    .action(async (source: string, destination: string, _options: unknown, command: Command) => {
      const config = commandConfig(command);
      const home = config.home;
      const store = new ModelStore({ home });
      const copied = await store.copy(source, destination);
      await auditCli(config, { action: "model.copy", target: copied.name, detail: { from: source } });
      print(`copied ${parseModelName(source).display} to ${copied.name}`);
    });
}
