import { homedir } from "node:os";
import type { Command } from "commander";
import { StoreError } from "../../core/errors.js";
import { ModelStore } from "../../store/index.js";
import { findAdoptableModels, modelLocations } from "../../supply/index.js";
import { auditCli } from "../audit.js";
import { commandConfig, print } from "../context.js";
import { formatSize } from "../humanize.js";
import { formatTable } from "../table.js";

export function registerAdopt(program: Command): void {
  program
    .command("adopt")
    .description(
      "find GGUF models kept by Ollama, LM Studio and the Hugging Face cache, and import the chosen ones by reference (no copy)",
    )
    .argument("[numbers...]", "which of the listed models to adopt (as `freehold adopt` numbers them)")
    .option("--all", "adopt every model found")
    .option("--search-home <dir>", "look under this home directory instead of yours")
    .action(async (numbers: string[], options: { all?: boolean; searchHome?: string }, command: Command) => {
      const home = options.searchHome ?? homedir();
      const found = await findAdoptableModels(home);
      const config = commandConfig(command);
      const freeholdHome = config.home;
      const store = new ModelStore({ home: freeholdHome });
      if (found.length === 0) {
        print(
          `no GGUF models found in ${modelLocations(home)
            .map((location) => location.path)
            .join(", ")}`,
        );
        return;
      }
      if (numbers.length === 0 && !options.all) {
        const rows = found.map((model, i) => [
          String(i + 1),
          model.tool,
          model.suggestedName,
          formatSize(model.size),
          model.path,
        ]);
        for (const line of formatTable(["#", "FROM", "NAME", "SIZE", "PATH"], rows)) print(line);
        print(
          "adopt some with `freehold adopt 1 3`, or all with `freehold adopt --all` (by reference: nothing is copied)",
        );
        return;
      }
      const chosen = options.all
        ? found
        : numbers.map((text) => {
            const index = Number(text);
            if (!Number.isInteger(index) || index < 1 || index > found.length) {
              throw new StoreError(`${JSON.stringify(text)} is not one of the listed numbers (1 to ${found.length})`);
            }
            return found[index - 1]!;
          });
      for (const model of chosen) {
        const result = await store.import(model.path, model.suggestedName, { reference: true });
        await auditCli(config, {
          action: "model.adopt",
          target: result.name,
          detail: { path: model.path, digest: result.files[0]!.digest },
        });
        print(`adopted ${result.name} (${result.files[0]!.digest}) by reference to ${model.path}`);
      }
    });
}
