/**
 * The memory/speed settings people tune on llama.cpp (issue 14): the KV cache's element type and flash attention.
 * Shared by config (FREEHOLD_KV_CACHE_TYPE, FREEHOLD_FLASH_ATTENTION, freehold.yaml), profiles and the engine.
 */

/** As Ollama's OLLAMA_KV_CACHE_TYPE: f16 (default, full precision), q8_0 (about half), q4_0 (about a quarter). */
export const kvCacheTypes = ["f16", "q8_0", "q4_0"] as const;
export type KvCacheType = (typeof kvCacheTypes)[number];

/** on, off, or auto (llama.cpp decides: on where the model and the device support it). */
export const flashAttentionModes = ["auto", "on", "off"] as const;
export type FlashAttentionMode = (typeof flashAttentionModes)[number];

export interface MemorySettings {
  kvCacheType: KvCacheType;
  flashAttention: FlashAttentionMode;
}

/**
 * llama.cpp refuses a quantized V cache without flash attention ("V cache quantization requires flash_attn"), so a
 * quantized type with flash attention off is a configuration error; null when the pair is usable.
 */
export function memorySettingsProblem(settings: MemorySettings): string | null {
  if (settings.kvCacheType !== "f16" && settings.flashAttention === "off")
    return `a ${settings.kvCacheType} KV cache needs flash attention (llama.cpp quantizes the V cache only with it): set flash attention to auto or on, or the KV cache type to f16`;
  return null;
}
