import { Command, CommanderError } from "commander";
import { isFreeholdError } from "../core/errors.js";
import { VERSION } from "../version.js";
import { commands } from "./commands/index.js";

/** Builds the `freehold` command-line program. Each command lives in its own file under ./commands. */
export function buildProgram(): Command {
  const program = new Command("freehold")
    .description(
      "Own the AI your work depends on: run open-weight GGUF models locally behind OpenAI/Ollama/Anthropic APIs.",
    )
    .version(VERSION)
    .option("--home <dir>", "data directory (default $FREEHOLD_HOME or ~/.freehold)")
    .option("--config <file>", "freehold.yaml to read (default $FREEHOLD_CONFIG, else $FREEHOLD_HOME/freehold.yaml)")
    .showHelpAfterError()
    .exitOverride();
  for (const register of commands) register(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode;
      return;
    }
    if (isFreeholdError(error) || error instanceof Error) {
      console.error(`freehold: ${error.message}`);
    } else {
      console.error(`freehold: ${String(error)}`);
    }
    process.exitCode = 1;
  }
}
