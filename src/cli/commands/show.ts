import type { Command } from "commander";
import { probeToolFormat } from "../../engine/toolFormatProbe.js";
import type { ModelSummary } from "../../gguf/index.js";
import { type Manifest, type ModelDetails, ModelStore } from "../../store/index.js";
import { formatProfile } from "../../supply/index.js";
import { commandConfig, print } from "../context.js";
import { formatSize } from "../humanize.js";
import { outputFormat, printJson, withFormat } from "../output.js";
import { formatTable } from "../table.js";

export function registerShow(program: Command): void {
  withFormat(
    program
      .command("show")
      .description("show a model's details: architecture, size, quantization, files and chat template")
      .argument("<name>", "the model's name"),
  ).action(async (name: string, options: { format?: string; json?: boolean }, command: Command) => {
    const format = outputFormat(options);
    const store = new ModelStore({ home: commandConfig(command).home });
    const details = await store.show(name);
    // The chat template in effect (a profile's replaces the model's), read as the runner reads it at load.
    const toolFormat = await probeToolFormat(
      details.manifest.profile?.template ?? details.manifest.summary.chatTemplate,
    );
    // JSON: the manifest, the blob paths and the tool format.
    if (format === "json") return printJson({ ...details.manifest, blobPaths: details.blobPaths, toolFormat });
    for (const line of describeModel(details, toolFormat)) print(line);
  });
}

const known = (value: number | null) => (value === null ? "unknown" : value.toLocaleString("en-US"));

function summaryRows(summary: ModelSummary): [string, string][] {
  const tensorMix = Object.entries(summary.tensorTypes)
    .map(([type, count]) => `${type}: ${count}`)
    .join(", ");
  const special = Object.entries(summary.specialTokens)
    .map(
      ([role, token]) =>
        `${role} ${token.text === null ? `#${token.id}` : `${JSON.stringify(token.text)} (${token.id})`}`,
    )
    .join(", ");
  const heads =
    summary.headCount === null
      ? "unknown"
      : `${summary.headCount}${summary.headCountKv === null ? "" : ` (${summary.headCountKv} key/value)`}`;
  return [
    ["architecture", summary.architecture],
    ["parameters", `${summary.parameterSize} (${summary.parameters.toLocaleString("en-US")})`],
    ["quantization", `${summary.fileType} (tensors: ${tensorMix})`],
    ["context length", known(summary.contextLength)],
    ["embedding length", known(summary.embeddingLength)],
    ["layers", known(summary.blockCount)],
    ["attention heads", heads],
    ["feed-forward length", known(summary.feedForwardLength)],
    ["vocabulary", `${known(summary.vocabularySize)}${summary.tokenizer ? ` (${summary.tokenizer} tokenizer)` : ""}`],
    ["special tokens", special || "none"],
    ["license", summary.license ?? "not stated"],
    ["size", `${formatSize(summary.size)} (${summary.size.toLocaleString("en-US")} bytes)`],
  ];
}

/** The human form of `freehold show`. */
function describeModel(details: ModelDetails, toolFormat: string): string[] {
  const { manifest } = details;
  const { summary } = manifest;
  const lines = [`Model ${details.name}`];
  if (summary.synthetic) lines.push("  synthetic (random weights): made by `freehold synth`, its text is noise");
  const rows: [string, string][] = [
    ...summaryRows(summary),
    ["tool format", toolFormat],
    ["vision projector", manifest.projector ? `${manifest.projector.filename} (below)` : "none (text only)"],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  for (const [label, value] of rows) lines.push(`  ${label.padEnd(width)}  ${value}`);

  lines.push("", manifest.files.length === 1 ? "File" : `Files (${manifest.files.length} shards, in order)`);
  const fileRows = manifest.files.map((file, i) => [
    file.digest,
    formatSize(file.size),
    file.filename,
    details.blobPaths[i]!,
  ]);
  for (const line of formatTable(["DIGEST", "SIZE", "IMPORTED AS", "PATH"], fileRows)) lines.push(`  ${line}`);
  if (manifest.projector && details.projectorPath) {
    lines.push("", "Vision projector (images, on the llama-server engine)");
    const row = [
      manifest.projector.digest,
      formatSize(manifest.projector.size),
      manifest.projector.filename,
      details.projectorPath,
    ];
    for (const line of formatTable(["DIGEST", "SIZE", "IMPORTED AS", "PATH"], [row])) lines.push(`  ${line}`);
  }

  lines.push("", "Source", `  ${describeSource(manifest)}`, `  added ${manifest.addedAt}`);
  if (manifest.profile) {
    const base = manifest.source.kind === "profile" ? manifest.source.base : manifest.name;
    lines.push("", "Profile (applied to every request; a request's own values win)");
    for (const line of formatProfile(base, manifest.profile).trimEnd().split("\n")) lines.push(`  ${line}`);
  }
  lines.push(
    "",
    manifest.profile?.template ? "Chat template (the model's own; the profile's replaces it)" : "Chat template",
  );
  if (summary.chatTemplate) for (const line of summary.chatTemplate.split("\n")) lines.push(`  ${line}`);
  else lines.push("  none (the model has no chat template, so it suits plain completion better than chat)");
  return lines;
}

function describeSource(manifest: Manifest): string {
  const { source } = manifest;
  switch (source.kind) {
    case "import":
      return manifest.files.some((file) => file.link)
        ? `imported by reference from ${source.path} (not copied; refused if the file changes)`
        : `imported from ${source.path}`;
    case "hub":
      return `pulled from hf.co/${source.repo} at ${source.revision} (commit ${source.commit}) via ${source.endpoint}`;
    case "profile":
      return `a profile over ${source.base} (same files, no copy)`;
    default:
      return source satisfies never;
  }
}
