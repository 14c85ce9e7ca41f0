import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { ModelStore } from "../../store/index.js";
import { parseProfile } from "../../supply/index.js";
import { auditCli } from "../audit.js";
import { commandConfig, print } from "../context.js";

export function registerCreate(program: Command): void {
  program
    .command("create")
    .description(
      "create a model from a profile: a base model plus system prompt, defaults, stop, template, examples (no copy)",
    )
    .argument("<name>", "the new model's name")
    .requiredOption(
      "-f, --file <profile>",
      "the profile: YAML (from, system, parameters, …) or Ollama's Modelfile syntax",
    )
    .action(async (name: string, options: { file: string }, command: Command) => {
      const config = commandConfig(command);
      const home = config.home;
      const store = new ModelStore({ home });
      const definition = parseProfile(await readFile(options.file, "utf8"));
      const created = await store.create(name, definition.from, definition.profile);
      await auditCli(config, { action: "model.create", target: created.name, detail: { from: definition.from } });
      print(
        `created ${created.name} from ${definition.from} (same files, no copy); see it with \`freehold show ${created.name}\``,
      );
    });
}
