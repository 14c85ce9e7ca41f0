import type { Command } from "commander";
import { commandConfig, print, serverUrl } from "../context.js";

interface Decision {
  requestId: string;
  model: string;
  route: string | null;
  policy: string | null;
  findings: Record<string, number>;
  redacted: Record<string, number> | null;
  excluded: { provider: string; model: string; reason: string }[];
  attempts: { provider: string; model: string; outcome: string; error?: string; ms: number }[];
  servedBy: { provider: string; model: string; remote: boolean } | null;
  outcome: string;
  explanation: string[];
}

function counts(record: Record<string, number>): string {
  return (
    Object.entries(record)
      .map(([kind, n]) => `${kind} ×${n}`)
      .join(", ") || "none"
  );
}

export function registerExplain(program: Command): void {
  program
    .command("explain")
    .description("why a request went where it did (the x-request-id a response carried), from a running server")
    .argument("<request-id>", "the request's x-request-id")
    .option("--url <url>", "server base URL (default from config)")
    .option("--api-key <key>", "an admin key, when the server requires keys")
    .option("--json", "print the decision as JSON")
    .action(async (requestId: string, options: { url?: string; apiKey?: string; json?: boolean }, command: Command) => {
      const base = options.url ?? serverUrl(commandConfig(command));
      const url = `${base.replace(/\/+$/, "")}/freehold/explain/${encodeURIComponent(requestId)}`;
      let response: Response;
      try {
        response = await fetch(url, {
          headers: options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {},
          signal: AbortSignal.timeout(10_000),
        });
      } catch {
        throw new Error(`no freehold server answered at ${base}; start one with \`freehold serve\` or pass --url`);
      }
      const body = (await response.json()) as Decision & { error?: { message: string } };
      if (!response.ok) throw new Error(body.error?.message ?? `the server answered ${response.status}`);
      if (options.json) {
        print(JSON.stringify(body, null, 2));
        return;
      }
      print(
        `request ${body.requestId}: model ${body.model}, ${body.route ? `route ${body.route}` : "no route (local engine)"}`,
      );
      print(
        `outcome: ${body.outcome}${body.servedBy ? ` by ${body.servedBy.provider}/${body.servedBy.model} (${body.servedBy.remote ? "remote" : "local"})` : ""}`,
      );
      if (body.policy)
        print(
          `privacy policy: ${body.policy}; found: ${counts(body.findings)}; redacted: ${body.redacted ? counts(body.redacted) : "nothing"}`,
        );
      for (const excluded of body.excluded)
        print(`excluded ${excluded.provider}/${excluded.model}: ${excluded.reason}`);
      for (const attempt of body.attempts)
        print(
          `tried ${attempt.provider}/${attempt.model}: ${attempt.outcome}${attempt.error ? ` (${attempt.error})` : ""}, ${attempt.ms} ms`,
        );
      for (const line of body.explanation) print(`- ${line}`);
    });
}
