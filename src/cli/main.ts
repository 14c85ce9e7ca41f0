import { Command, CommanderError } from "commander";
import { VERSION } from "../version.js";
import { commands } from "./commands/index.js";
import { commanderExitCode, EXIT_FAILURE, EXIT_USAGE, friendlyFileError, UsageError } from "./errors.js";
import { polishHelp } from "./help.js";

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
  polishHelp(program);
  return program;
}

/**
 * A reader that stops early (`freehold list | head -1`) closes the pipe; the next write fails with EPIPE. Unix tools
 * end quietly then, so do we: the output nobody reads is not an error, and exit 0 keeps `set -o pipefail` scripts
 * that only wanted the first lines working.
 */
function endQuietlyOnClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(0);
    throw error;
  });
}

export async function main(argv: string[]): Promise<void> {
  endQuietlyOnClosedPipe(process.stdout);
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = commanderExitCode(error);
      return;
    }
    const message = friendlyFileError(error) ?? (error instanceof Error ? error.message : String(error));
    console.error(`freehold: ${message}`);
    process.exitCode = error instanceof UsageError ? EXIT_USAGE : EXIT_FAILURE;
  }
}
