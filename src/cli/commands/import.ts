import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { ModelStore } from "../../store/index.js";
import { auditCli } from "../audit.js";
import { commandConfig, print } from "../context.js";
import { HashDisplay } from "../hashProgress.js";
import { formatSize } from "../humanize.js";

export function registerImport(program: Command): void {
  program
    .command("import")
    .description("add a GGUF model file to the store under a name (all shards, for a split model)")
    .argument("<file>", "the .gguf file (for a split model, any of its -0000N-of-0000M shards)")
    .requiredOption(
      "--name <name>",
      "the name to give it: model[:tag], namespace/model[:tag] or host/namespace/model[:tag]",
    )
    .option("--link", "store a reference to the file instead of a copy (it is refused if the file changes later)")
    .option("--hardlink", "hard-link instead of copying where possible (then do not edit the original file in place)")
    .option(
      "--projector <mmproj>",
      "a vision projector (mmproj .gguf) to store with the model: images on the llama-server engine",
    )
    .action(
      async (
        file: string,
        options: { name: string; link?: boolean; hardlink?: boolean; projector?: string },
        command: Command,
      ) => {
        refuseDirectory(file);
        const config = commandConfig(command);
        const home = config.home;
        const store = new ModelStore({ home });
        const progress = new HashDisplay(`import ${options.name}`);
        const result = await progress.track(
          store.import(file, options.name, {
            link: options.hardlink === true,
            reference: options.link === true,
            onProgress: progress.onProgress,
            ...(options.projector ? { projector: options.projector } : {}),
          }),
        );
        await auditCli(config, {
          action: "model.import",
          target: result.name,
          detail: { file, digests: result.files.map((entry) => entry.digest), reference: options.link === true },
        });
        print(`imported ${result.name}${result.replaced ? " (replacing the model it named before)" : ""}`);
        for (const entry of result.files) {
          const how = options.link
            ? `referenced at ${entry.path}`
            : entry.reused
              ? "already in the store"
              : entry.linked
                ? "linked"
                : "copied";
          print(`${entry.digest}  ${entry.filename}  ${formatSize(entry.size)}  ${how}`);
        }
        if (result.projector)
          print(
            `${result.projector.digest}  ${result.projector.filename}  ${formatSize(result.projector.size)}  vision projector${options.link ? `, referenced at ${result.projector.path}` : ""}`,
          );
        if (result.summary.synthetic) print("note: this is a synthetic model (random weights): its text is noise.");
      },
    );
}

/** `freehold import ~/models` (a folder, as `ollama create` users sometimes try): say which files it could mean. */
function refuseDirectory(file: string): void {
  let isDirectory = false;
  try {
    isDirectory = statSync(file).isDirectory();
  } catch {
    return; // a missing file is named by the store's own reader
  }
  if (!isDirectory) return;
  const ggufs = readdirSync(file)
    .filter((name) => name.toLowerCase().endsWith(".gguf"))
    .slice(0, 5);
  const hint = ggufs.length
    ? ` It holds ${ggufs.join(", ")}: for example freehold import ${join(file, ggufs[0]!)} --name NAME`
    : " (it holds no .gguf file). To take over a folder of Ollama or Hugging Face models, use freehold adopt";
  throw new Error(`${file} is a directory; import takes one .gguf file.${hint}`);
}
