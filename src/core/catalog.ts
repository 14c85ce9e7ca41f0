import type { ModelProfile } from "./profile.js";

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
  /** A vision projector stored with the model: it can read images (on the llama-server engine). */
  projector?: { digest: string; size: number };
  /**
   * How tools travel for this model (docs/models.md › Tool calls): "json" (the JSON path) or its native format's
   * description, read from the chat template in effect (a profile's replaces the model's). Set by `describe` only.
   */
  toolFormat?: string;
  /** Selected GGUF facts for display (`general.architecture`, `llama.context_length`, ...). */
  facts: Record<string, string | number | boolean | null>;
  /** A profile's settings (`freehold create`), and the model it is based on. */
  profile?: ModelProfile;
  base?: string;
  /** The profile as text (YAML, as `freehold create -f` reads it), and its parameters one per line (/api/show). */
  modelfile?: string;
  profileParameters?: string;
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

/** One line of pull or create progress, in Ollama's shape. */
export interface SupplyProgress {
  status: string;
  digest?: string;
  total?: number;
  completed?: number;
}

/** A profile to create: Ollama's Modelfile text, or its fields (from, system, template, parameters, messages, license). */
export type ProfileInput = { modelfile: string } | { fields: Record<string, unknown> };

/** Getting models: pull from the hub, create profiles. The HTTP layer's view of the model supply chain. */
export interface ModelSupply {
  pull(reference: string, onProgress: (progress: SupplyProgress) => void, signal?: AbortSignal): Promise<void>;
  create(name: string, input: ProfileInput, onProgress: (progress: SupplyProgress) => void): Promise<void>;
}
