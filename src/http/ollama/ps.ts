import type { Hono } from "hono";
import type { AppEnv } from "../appEnv.js";
import { guard } from "../guard.js";

export interface LoadedModelsSource {
  loadedModels(): {
    name: string;
    size: number;
    memory: number;
    slots: number;
    digest: string;
    state: string;
    threads?: number;
    busyThreads?: number;
    contextSize?: number;
    backend?: string;
    engine?: string;
    vision?: boolean;
    gpuLayers?: number;
    vram?: number;
    kvCacheType?: string;
    flashAttention?: string;
    activeRequests: number;
    queuedRequests: number;
    expiresAt: string | null;
  }[];
}

/** Ollama's GET /api/ps: what is loaded now. Fields beyond Ollama's go under `details`. */
export function registerOllamaPs(app: Hono<AppEnv>, source: LoadedModelsSource): void {
  app.get("/api/ps", guard("key"), (c) =>
    c.json({
      models: source.loadedModels().map((m) => ({
        name: m.name,
        model: m.name,
        size: m.memory,
        digest: m.digest,
        expires_at: m.expiresAt,
        size_vram: m.vram ?? 0,
        context_length: m.contextSize,
        details: {
          state: m.state,
          threads: m.threads,
          threads_when_busy: m.busyThreads,
          context_length: m.contextSize,
          backend: m.backend,
          engine: m.engine,
          vision: m.vision,
          gpu_layers: m.gpuLayers,
          kv_cache_type: m.kvCacheType,
          flash_attention: m.flashAttention,
          file_size: m.size,
          slots: m.slots,
          active_requests: m.activeRequests,
          queued_requests: m.queuedRequests,
        },
      })),
    }),
  );
}
