import { fork } from "node:child_process";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";

/** What `/api/show` and `freehold show` say when a template has no native tool format: the JSON path. */
export const JSON_TOOL_FORMAT = "json";

/** How long reading a template may take (a cold worker imports node-llama-cpp first). */
const PROBE_TIMEOUT_MS = 30_000;

const cache = new Map<string, Promise<string>>();
const TIMED_OUT = "unknown (the chat template could not be read in time)";

/**
 * The tool format a model's chat template gives (docs/models.md › Tool calls), as the runner would choose it at load,
 * without loading the model: "json" for the JSON path, else the native format's description ("template: {"name": …,
 * "parameters": {…}}", "node-llama-cpp mistral: …"). The template is read in a child process with a time and memory
 * limit, so a template that loops or grows cannot stall or exhaust the server; such a template reads as "unknown".
 * Results are kept per template.
 */
export function probeToolFormat(template: string | null | undefined): Promise<string> {
  if (!template || !mayHaveToolFormat(template)) return Promise.resolve(JSON_TOOL_FORMAT);
  const key = createHash("sha256").update(template).digest("hex");
  let probe = cache.get(key);
  if (!probe) {
    probe = runProbe(template);
    cache.set(key, probe);
    // A reader that ran out of time may only have been slowed by a busy machine: asked again, it reads again.
    void probe.then((format) => {
      if (format === TIMED_OUT) cache.delete(key);
    });
  }
  return probe;
}

/**
 * Whether a template could give a native format at all, so that most templates (ChatML, none) need no reader: every
 * way one is found mentions tools or functions (the template's `tools` variable, `<tool_call>`, `[TOOL_CALLS]`,
 * `namespace functions`) or is Harmony's channels or Functionary's `>>>` (nativeTools.ts).
 */
function mayHaveToolFormat(template: string): boolean {
  return /tool|function|<\|channel\|>|>>>/i.test(template);
}

/** The reader's entry: compiled JS next to us, or the TypeScript source under tsx (as the runner's, runnerProcess.ts). */
function readerEntry(): { path: string; execArgv: string[] } {
  const fromSource = import.meta.url.endsWith(".ts");
  const url = new URL(fromSource ? "./toolFormatWorker.ts" : "./toolFormatWorker.js", import.meta.url);
  return { path: fileURLToPath(url), execArgv: fromSource ? ["--import", "tsx"] : [] };
}

function runProbe(template: string): Promise<string> {
  return new Promise((resolve) => {
    const entry = readerEntry();
    // A child process, as the runner: its own memory limit, killed when it takes too long.
    const child = fork(entry.path, [], {
      execArgv: [...entry.execArgv, "--max-old-space-size=256"],
      stdio: ["ignore", "ignore", "pipe", "ipc"],
    });
    let settled = false;
    let stderr = "";
    child.stderr?.on("data", (chunk) => {
      if (stderr.length < 2000) stderr += chunk;
    });
    const settle = (value: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (child.exitCode === null) child.kill("SIGKILL");
      resolve(value);
    };
    const timer = setTimeout(() => settle(TIMED_OUT), PROBE_TIMEOUT_MS);
    timer.unref();
    child.once("message", (value) => settle(typeof value === "string" ? value : "unknown"));
    child.once("error", (error) => settle(`unknown (${error.message.split("\n")[0]})`));
    child.once("exit", () =>
      settle(`unknown (the template reader stopped${stderr ? `: ${stderr.trim().split("\n")[0]}` : ""})`),
    );
    child.send({ template });
  });
}
