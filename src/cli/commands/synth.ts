import { readFileSync } from "node:fs";
import type { Command } from "commander";
import {
  projectorPathFor,
  type SynthPreset,
  type SynthQuant,
  synthPresets,
  synthQuants,
  visionPresets,
  writeSyntheticModel,
} from "../../gguf/index.js";
import { print } from "../context.js";
import { UsageError } from "../errors.js";

export function registerSynth(program: Command): void {
  program
    .command("synth")
    .description(
      "write a synthetic llama-architecture GGUF (random weights: its text is noise) for tests, demos and benchmarks",
    )
    .argument("<out>", "output .gguf path")
    .option("--preset <name>", `model shape: ${Object.keys(synthPresets).join(", ")}`, "tiny")
    .option("--quant <type>", `weight type: ${synthQuants.join(", ")}`, "f32")
    .option("--seed <n>", "random seed (same seed, same bytes)", "0")
    .option("--chat-template <file>", "a Jinja chat template file for the model to carry (default: ChatML)")
    .action((out: string, options: { preset: string; quant: string; seed: string; chatTemplate?: string }) => {
      if (!(options.preset in synthPresets)) {
        throw new UsageError(
          `unknown preset "${options.preset}"; choose one of ${Object.keys(synthPresets).join(", ")}`,
        );
      }
      if (!synthQuants.includes(options.quant as SynthQuant)) {
        throw new UsageError(`unknown --quant "${options.quant}"; choose one of ${synthQuants.join(", ")}`);
      }
      const seed = Number(options.seed);
      if (!/^\d+$/.test(options.seed) || seed > 0xffffffff) {
        throw new UsageError(`--seed must be an integer from 0 to 4294967295, not "${options.seed}"`);
      }
      let chatTemplate: string | undefined;
      if (options.chatTemplate !== undefined) {
        try {
          chatTemplate = readFileSync(options.chatTemplate, "utf8");
        } catch (error) {
          throw new UsageError(
            `--chat-template: cannot read "${options.chatTemplate}" (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); give a Jinja template file`,
          );
        }
        if (chatTemplate.trim() === "")
          throw new UsageError(`--chat-template: "${options.chatTemplate}" is empty; give a Jinja template file`);
      }
      const size = writeSyntheticModel(out, {
        preset: options.preset as SynthPreset,
        quant: options.quant as SynthQuant,
        seed,
        ...(chatTemplate !== undefined ? { chatTemplate } : {}),
      });
      print(
        `wrote ${out} (${size.toLocaleString("en-US")} bytes): synthetic ${options.preset} ${options.quant}, seed ${seed}`,
      );
      if (visionPresets.includes(options.preset as SynthPreset))
        print(
          `wrote ${projectorPathFor(out)}: its synthetic vision projector (freehold import ${out} --projector ${projectorPathFor(out)})`,
        );
      print("note: synthetic models have random weights; their text is noise.");
    });
}
