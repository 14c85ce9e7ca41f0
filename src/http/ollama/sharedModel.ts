import type { GenerateRequest } from "../../core/chat.js";
import type { RequestContext } from "../../core/context.js";
import { PermissionError } from "../../core/errors.js";

/** The server's limits on how a request may ask a model to be loaded. */
export interface LoadLimits {
  /** CPU threads a runner may use at most (the machine's CPUs); more only slows every request down. */
  maxThreads: number;
  /** The model's trained context, when the catalog knows it (null: unknown, e.g. a remote model). */
  trainedContext(model: string): Promise<number | null>;
}

/** The header that tells an Ollama client which of its loading options were ignored or clamped, and why. */
export const loadOptionsHeader = "x-freehold-load-options";

/** A caller who may not change how a shared model is loaded: a non-admin key on a server that has keys. */
function sharedOnly(context: RequestContext): boolean {
  return context.key !== undefined && !context.key.admin;
}

/**
 * Ollama's num_ctx, num_thread, num_gpu and keep_alive change how a model is loaded, and a loaded model is shared by
 * every caller: a different value reloads it for everyone (and num_thread 1024 would stall the machine). So a
 * non-admin key's loading options are ignored (the model stays as loaded), and anyone else's are clamped to the
 * server's limits: threads to the machine's CPUs, num_ctx to the model's trained context (memory is checked at
 * load). Returns the request to run and one note per ignored or clamped option (sent back in a header).
 */
export async function limitLoadSettings(
  request: GenerateRequest,
  context: RequestContext,
  limits: LoadLimits,
): Promise<{ request: GenerateRequest; notes: string[] }> {
  const notes: string[] = [];
  if (sharedOnly(context)) {
    const { load, keepAliveMs, ...rest } = request;
    const ignored = [
      ...(load?.contextSize !== undefined ? ["num_ctx"] : []),
      ...(load?.threads !== undefined ? ["num_thread"] : []),
      ...(load?.gpuLayers !== undefined ? ["num_gpu"] : []),
      ...(keepAliveMs !== undefined ? ["keep_alive"] : []),
    ];
    if (ignored.length > 0)
      notes.push(`ignored ${ignored.join(", ")}: changing how a shared model is loaded needs an admin key`);
    return { request: rest as GenerateRequest, notes };
  }
  if (!request.load) return { request, notes };
  const load = { ...request.load };
  if (load.threads !== undefined && load.threads > limits.maxThreads) {
    notes.push(`num_thread ${load.threads} clamped to ${limits.maxThreads} (this machine's CPUs)`);
    load.threads = limits.maxThreads;
  }
  if (load.contextSize !== undefined) {
    const trained = await limits.trainedContext(request.model).catch(() => null);
    if (trained && load.contextSize > trained) {
      notes.push(`num_ctx ${load.contextSize} clamped to ${trained} (the context ${request.model} was trained on)`);
      load.contextSize = trained;
    }
  }
  return { request: { ...request, load }, notes };
}

/** An empty prompt with keep_alive 0 unloads the model for everyone: an admin key's call once keys exist. */
export function assertMayUnload(model: string, context: RequestContext): void {
  if (sharedOnly(context))
    throw new PermissionError(
      `unloading ${model} (keep_alive 0) stops it for every caller and needs an admin key; key ${context.key?.name ?? ""} is not one`,
      "admin_key_required",
    );
}
