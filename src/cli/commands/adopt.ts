import { homedir } from "node:os";
import type { Command } from "commander";
import { modelToolsEnvironment } from "../../config/config.js";
import { StoreError } from "../../core/errors.js";
import { ModelStore } from "../../store/index.js";
import { findAdoptableModels, modelLocations } from "../../supply/index.js";
import { auditCli } from "../audit.js";
import { commandConfig, print } from "../context.js";
import { HashDisplay } from "../hashProgress.js";
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
    .option(
      "--search-root <dir>",
      "look for system-wide models (Ollama's service, /usr/share/ollama) under this directory instead of / (a mounted disk)",
    )
    .action(
      async (
        numbers: string[],
        options: { all?: boolean; searchHome?: string; searchRoot?: string },
        command: Command,
      ) => {
        const places = {
          home: options.searchHome ?? homedir(),
          env: modelToolsEnvironment(),
          ...(options.searchRoot ? { systemRoot: options.searchRoot } : {}),
        };
        const found = await findAdoptableModels(places);
        const config = commandConfig(command);
        const freeholdHome = config.home;
        const store = new ModelStore({ home: freeholdHome });
        if (found.length === 0) {
          print("no GGUF models found in:");
          for (const location of modelLocations(places)) print(`  ${location.path}  (${location.why})`);
          print(
            "set OLLAMA_MODELS, HF_HUB_CACHE or HF_HOME if your models live elsewhere, or import a file: freehold import FILE.gguf --name NAME",
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
          const progress = new HashDisplay(`adopt ${model.suggestedName}`);
          const result = await progress.track(
            store.import(model.path, model.suggestedName, { reference: true, onProgress: progress.onProgress }),
          );
          await auditCli(config, {
            action: "model.adopt",
            target: result.name,
            detail: { path: model.path, digest: result.files[0]!.digest },
          });
          print(`adopted ${result.name} (${result.files[0]!.digest}) by reference to ${model.path}`);
        }
      },
    );
}
