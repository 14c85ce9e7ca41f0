import type { Command } from "commander";
import { commandSettings, print } from "../context.js";

export function registerConfig(program: Command): void {
  const config = program.command("config").description("freehold.yaml: check it before the server reads it");
  config
    .command("check")
    .description("validate freehold.yaml (every error names the line and the field) and summarise it")
    .argument("[file]", "the file to check (default: --config, $FREEHOLD_CONFIG, else $FREEHOLD_HOME/freehold.yaml)")
    .action((path: string | undefined, _options: unknown, command: Command) => {
      const settings = commandSettings(command, {}, undefined, path);
      if (!settings.file) {
        print("no freehold.yaml: everything is served by the local engine, nothing leaves this machine");
        return;
      }
      const file = settings.file;
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
      if (settings.offline) print("offline: no request leaves this machine");
    });
}
