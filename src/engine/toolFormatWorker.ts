import { resolveNativeTools } from "./runner/nativeTools.js";

/**
 * Reads a chat template's native tool format, as the runner does at load (src/engine/runner/prompt.ts), in a child
 * process (toolFormatProbe.ts): a template comes from a model file, and rendering it must not stall the server.
 * Gets the template as its one IPC message, answers with the format's description ("json" for none).
 */
process.once("message", async (message) => {
  const template = (message as { template: string }).template;
  const nlc = await import("node-llama-cpp");
  let jinja: InstanceType<typeof nlc.JinjaTemplateChatWrapper> | undefined;
  try {
    jinja = new nlc.JinjaTemplateChatWrapper({ template });
  } catch {
    // The Jinja interpreter cannot run it: a known family's wrapper may still (Hermes), as in the runner.
    jinja = undefined;
  }
  process.send?.(resolveNativeTools(nlc, template, jinja)?.description ?? "json", undefined, {}, () => process.exit(0));
});
