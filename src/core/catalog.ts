/** What the API surfaces need to know about installed models, independent of how the store keeps them. */
export interface ModelDescription {
  name: string;
  digest: string;
  /** Bytes on disk (all files). */
  size: number;
  modifiedAt: Date;
  architecture: string;
  parameters: number;
  parameterSize: string;
  quantization: string;
  contextLength: number | null;
  embeddingLength: number | null;
  chatTemplate: string | null;
  license: string | null;
  synthetic: boolean;
  /** Selected GGUF facts for display (`general.architecture`, `llama.context_length`, ...). */
  facts: Record<string, string | number | boolean | null>;
}

/** The model store as the API surfaces see it: list, describe, copy, remove. */
export interface ModelCatalog {
  list(): Promise<ModelDescription[]>;
  describe(name: string): Promise<ModelDescription>;
  copy(source: string, destination: string): Promise<void>;
  remove(name: string): Promise<void>;
}

/** Loading and unloading models on request (Ollama's empty-prompt load, keep_alive 0, `freehold stop`). */
export interface ModelControl {
  /** Loads a model now; it stays for `keepAliveMs` (default keep-alive when absent). */
  load(name: string, keepAliveMs?: number): Promise<void>;
  /** Unloads a model now (or after its running requests). Returns false when it was not loaded. */
  unload(name: string): Promise<boolean>;
}
