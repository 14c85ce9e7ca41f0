import { type Command, Option } from "commander";
import { fetchServer, print, serverFailure, serverTarget, withServerFlags } from "../context.js";
import { outputFormat, printJson, withFormat } from "../output.js";

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

type Options = { host?: string; url?: string; apiKey?: string; format?: string; json?: boolean };

export function registerExplain(program: Command): void {
  withFormat(
    withServerFlags(
      program
        .command("explain")
        .description("why a request went where it did (the x-request-id a response carried), from a running server")
        .argument("<request-id>", "the request's x-request-id"),
    ),
  )
    // --url is the older spelling of --host (kept so scripts keep working; hidden from help).
    .addOption(new Option("--url <url>", "server base URL").hideHelp())
    .action(async (requestId: string, options: Options, command: Command) => {
      const format = outputFormat(options);
      const target = serverTarget(command, options);
      const response = await fetchServer(target, `/freehold/explain/${encodeURIComponent(requestId)}`);
      if (!response.ok) throw await serverFailure(response, target);
      const body = (await response.json()) as Decision;
      if (format === "json") return printJson(body);
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
