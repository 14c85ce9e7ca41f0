import type { Command } from "commander";
import { ConfigFileError, type Settings } from "../../config/fileConfig.js";
import { mcpDestinations } from "../../mcp/egress.js";
import { commandSettings, print } from "../context.js";
import { outputFormat, printJson, withFormat } from "../output.js";

export function registerConfig(program: Command): void {
  const config = program.command("config").description("freehold.yaml: check it before the server reads it");
  withFormat(
    config
      .command("check")
      .description("validate freehold.yaml (every error at once, each naming the line and the field) and summarise it")
      .argument("[file]", "the file to check (default: --config, $FREEHOLD_CONFIG, else $FREEHOLD_HOME/freehold.yaml)"),
  ).action((path: string | undefined, options: { format?: string; json?: boolean }, command: Command) => {
    const format = outputFormat(options);
    let settings: Settings;
    try {
      settings = commandSettings(command, {}, undefined, path);
    } catch (error) {
      if (!(error instanceof ConfigFileError)) throw error;
      process.exitCode = 1;
      if (format === "json") return printJson({ ok: false, problems: error.problems });
      for (const problem of error.problems) process.stderr.write(`${problem}\n`);
      const count = error.problems.length;
      process.stderr.write(`${count} problem${count === 1 ? "" : "s"}: the server would refuse to start\n`);
      return;
    }
    const file = settings.file;
    if (format === "json")
      return printJson({ ok: true, file: settings.filePath, offline: settings.offline, config: withoutSecrets(file) });
    if (!file) {
      print("no freehold.yaml: everything is served by the local engine, nothing leaves this machine");
      return;
    }
    print(`${settings.filePath}: ok`);
    const providers = Object.entries(file.providers);
    print(
      `providers: ${providers.map(([name, provider]) => `${name} (${provider.kind}${provider.base_url ? ` ${provider.base_url}` : ""})`).join(", ") || "none besides local"}`,
    );
    for (const [name, route] of Object.entries(file.routes)) {
      const tiers = route.targets.map((tier) =>
        ("balance" in tier ? tier.balance : [tier]).map((target) => `${target.provider}/${target.model}`).join(" | "),
      );
      print(`route ${name}: ${tiers.join(" → ")} (privacy: ${route.privacy ?? file.privacy.default})`);
    }
    for (const server of mcpDestinations(file))
      print(
        `mcp server ${server.server}: ${server.destination} (${server.remote ? "remote" : "local"}${server.routes.length ? `; routes ${server.routes.join(", ")}` : ""})`,
      );
    if (file.mcp_allow_client_servers)
      print("mcp_allow_client_servers: Responses requests may name MCP servers by URL (remote; see doctor --egress)");
    if (settings.offline) print("offline: no request leaves this machine");
  });
}

/** The file as JSON for `config check --json`, with resolved secrets (api keys, header values) replaced. */
function withoutSecrets(file: Settings["file"]): unknown {
  if (!file) return null;
  const providers = Object.fromEntries(
    Object.entries(file.providers).map(([name, provider]) => [
      name,
      {
        ...provider,
        ...(provider.api_key ? { api_key: "(set)" } : {}),
        ...(provider.headers
          ? { headers: Object.fromEntries(Object.keys(provider.headers).map((header) => [header, "(set)"])) }
          : {}),
      },
    ]),
  );
  return { ...file, providers };
}
