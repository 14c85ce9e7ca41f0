import { CommanderError } from "commander";

/**
 * A flag or argument the person typed is wrong (a bad value, a bad combination). Exits 2, like commander's own
 * usage errors, so scripts can tell "you called it wrong" (2) from "it ran and failed" (1).
 */
export class UsageError extends Error {}

/** Exit statuses: 0 success, 1 a failed check or operation, 2 a usage error. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Commander's codes for an answer the person asked for (help, version); every other CommanderError is a usage error. */
const askedFor = new Set(["commander.helpDisplayed", "commander.version", "commander.help"]);

/** The exit status for a CommanderError: 0 for --help/--version, 2 for an unknown flag, missing argument, etc. */
export function commanderExitCode(error: CommanderError): number {
  if (askedFor.has(error.code)) return error.exitCode === 0 ? 0 : EXIT_USAGE;
  return EXIT_USAGE;
}

const errnoReasons: Record<string, string> = {
  ENOENT: "does not exist",
  EISDIR: "is a directory, not a file",
  ENOTDIR: "is not inside a directory (a part of the path is a file)",
  EACCES: "cannot be read or written with your permissions",
  EPERM: "cannot be read or written with your permissions",
};

/**
 * One line a person can act on, for the errors Node's file system raises (`ENOENT: no such file or directory, open
 * '/x'` becomes `/x does not exist`); null when the error is not one of those.
 */
export function friendlyFileError(error: unknown): string | null {
  const { code, path } = (error ?? {}) as NodeJS.ErrnoException;
  if (!code || !path) return null;
  const reason = errnoReasons[code];
  return reason ? `${path} ${reason}` : null;
}

export { CommanderError };
