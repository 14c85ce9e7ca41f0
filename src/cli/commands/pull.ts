import { resolve } from "node:path";
import type { Command } from "commander";
import { StoreError } from "../../core/errors.js";
import { hubClientFor } from "../../modelSupply.js";
import { ModelStore } from "../../store/index.js";
import { installLocked, LOCKFILE_NAME, ModelPuller, readLockfile } from "../../supply/index.js";
import { auditCli } from "../audit.js";
import { commandSettings, print } from "../context.js";
import { UsageError } from "../errors.js";
import { formatSize } from "../humanize.js";
import { PullDisplay } from "../pullProgress.js";

export function registerPull(program: Command): void {
  program
    .command("pull")
    .description("download a model from Hugging Face into the store, verified by sha256 (resumes if interrupted)")
    .argument(
      "[reference]",
      "hf.co/OWNER/REPO (Q4_K_M or the closest), hf.co/OWNER/REPO:QUANT or hf.co/OWNER/REPO/FILE.gguf; @REVISION pins a branch, tag or commit",
    )
    .option("--name <name>", "store it under this name (default hf.co/OWNER/REPO:QUANT)")
    .option("--locked", `install exactly what ./${LOCKFILE_NAME} pins, failing if the hub now serves other bytes`)
    .option("--offline", "refuse any network access (FREEHOLD_OFFLINE=1 does the same)")
    .option(
      "--no-projector",
      "leave out the repository's vision projector (mmproj-*.gguf): the model answers text only",
    )
    .action(
      async (
        reference: string | undefined,
        options: { name?: string; locked?: boolean; offline?: boolean; projector: boolean },
        command: Command,
      ) => {
        const settings = commandSettings(command, {}, options.offline === true ? true : undefined);
        const store = new ModelStore({ home: settings.config.home });
        const puller = new ModelPuller(store, hubClientFor(settings.config, settings.offline));
        const display = new PullDisplay();
        if (options.locked && options.projector === false)
          throw new UsageError(
            "pull --locked installs what the lockfile pins, a projector included; --no-projector applies to a plain pull (then `freehold lock` again)",
          );
        if (options.locked) {
          if (reference !== undefined)
            throw new StoreError("pull --locked takes no reference: it installs what the lockfile pins");
          const path = resolve(LOCKFILE_NAME);
          const lockfile = await readLockfile(path);
          if (!lockfile)
            throw new StoreError(`there is no ${path}; write one with \`freehold lock\``, "lockfile_missing");
          try {
            const results = await installLocked(store, puller, lockfile, { onProgress: display.onProgress });
            for (const result of results) display.downloaded(result.downloaded);
            const summary = display.finish();
            for (const result of results) {
              await auditCli(settings.config, { action: "model.pull", target: result.name, detail: { locked: true } });
              print(`${result.name}: ${result.action}`);
            }
            print(`${results.length} locked model(s) match ${LOCKFILE_NAME}; ${summary}`);
          } finally {
            display.finish();
          }
          return;
        }
        if (reference === undefined)
          throw new StoreError("name what to pull (hf.co/OWNER/REPO[:QUANT]), or use --locked");
        try {
          const result = await puller.pull(reference, {
            ...(options.name ? { name: options.name } : {}),
            ...(options.projector === false ? { projector: false } : {}),
            onProgress: display.onProgress,
          });
          display.downloaded(result.downloaded);
          await auditCli(settings.config, {
            action: "model.pull",
            target: result.name,
            detail: { reference, repo: result.repo, commit: result.commit, digests: result.files.map((f) => f.digest) },
          });
          const summary = display.finish();
          const size = result.files.reduce((total, file) => total + file.size, 0);
          const files = result.files.length === 1 ? "1 file" : `${result.files.length} files`;
          print(
            `pulled ${result.name} from hf.co/${result.repo}@${result.commit.slice(0, 12)}: ${result.reason}; ${files}, ${formatSize(size)}, sha256 verified; ${summary}`,
          );
          if (result.projector)
            print(
              `vision projector ${result.projector.filename} (${result.projectorReason ?? "chosen"}), ${formatSize(result.projector.size)}, sha256 verified: images on the llama-server engine`,
            );
          if (result.projectorSkipped) print(`projector left out: ${result.projectorSkipped}`);
        } finally {
          display.finish();
        }
      },
    );
}
