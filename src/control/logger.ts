import { Writable } from "node:stream";
import { type Logger, pino } from "pino";

export type { Logger } from "pino";

const levelNames: Record<number, string> = {
  10: "trace",
  20: "debug",
  30: "info",
  40: "warn",
  50: "error",
  60: "fatal",
};
const hidden = new Set(["level", "time", "pid", "hostname", "msg"]);

/** Turns pino's JSON lines into "12:00:01 info  msg key=value" for a person at a terminal. */
function humanLines(output: NodeJS.WritableStream): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (!line) continue;
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          const time = new Date(Number(entry.time)).toISOString().slice(11, 19);
          const fields = Object.entries(entry)
            .filter(([name]) => !hidden.has(name))
            .map(([name, value]) => `${name}=${typeof value === "string" ? value : JSON.stringify(value)}`);
          const level = (levelNames[Number(entry.level)] ?? "info").padEnd(5);
          output.write(`${time} ${level} ${String(entry.msg ?? "")}${fields.length ? ` ${fields.join(" ")}` : ""}\n`);
        } catch {
          output.write(`${line}\n`);
        }
      }
      done();
    },
  });
}

/**
 * The one logger: structured JSON lines (pino), human-readable when stdout is a terminal. Anything that looks like a
 * credential is redacted by path as a second line of defence; the first is never passing one in.
 */
export function createLogger(
  level: string,
  output: NodeJS.WritableStream & { isTTY?: boolean } = process.stdout,
): Logger {
  const destination = output.isTTY ? humanLines(output) : output;
  return pino(
    {
      level,
      base: undefined,
      redact: {
        paths: ["authorization", "*.authorization", "secret", "*.secret", "apiKey", "*.apiKey", "headers", "*.headers"],
        censor: "[redacted]",
      },
    },
    destination,
  );
}
