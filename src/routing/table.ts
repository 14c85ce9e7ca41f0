import type { FileConfig, PrivacyPolicy, ProviderConfig } from "../config/fileConfig.js";
import type { ModelPort } from "../core/chat.js";
import { compileDetectors } from "../privacy/classifier.js";
import type { Detector } from "../privacy/detectors.js";
import { defaultScanBudget, type ScanBudget } from "../privacy/scan.js";
import { AnthropicProvider } from "../providers/anthropic.js";
import { OllamaProvider } from "../providers/ollama.js";
import { OpenAICompatibleProvider } from "../providers/openaiCompatible.js";
import { localProvider, type Provider } from "../providers/provider.js";
import { CircuitBreaker } from "./breaker.js";

/** One target of a route with its live state: requests in flight, breaker, health, balancing credit. */
export class TargetState {
  outstanding = 0;
  healthy = true;
  /** Smooth weighted round-robin credit (nginx's algorithm), for ties on load. */
  credit = 0;
  constructor(
    readonly provider: Provider,
    readonly model: string,
    readonly weight: number,
    readonly timeoutMs: number,
    readonly breaker: CircuitBreaker,
  ) {}
  get remote(): boolean {
    return this.provider.origin !== null;
  }
  get label(): string {
    return `${this.provider.name}/${this.model}`;
  }
}

export interface Route {
  name: string;
  /** Tried in order; within a tier, balanced. */
  tiers: TargetState[][];
  policy: PrivacyPolicy;
  retries: number;
  backoffMs: number;
  maxRetryWaitMs: number;
}

/** Everything the router reads per request, swapped whole on reload (in-flight requests keep theirs). */
export interface RoutingTable {
  local: Provider;
  providers: ReadonlyMap<string, Provider & { healthCheckMs: number }>;
  routes: ReadonlyMap<string, Route>;
  detectors: Detector[];
  /** How much text, and how long, one request may have scanned; past it the request counts as unscannable. */
  scanBudget: ScanBudget;
  keys: FileConfig["keys"];
  offline: boolean;
}

const DEFAULT_TIMEOUT_MS = 120_000;

export function createProvider(name: string, config: ProviderConfig, local: ModelPort): Provider {
  const common = {
    name,
    baseUrl: config.base_url ?? "",
    ...(config.api_key ? { apiKey: config.api_key } : {}),
    ...(config.headers ? { headers: config.headers } : {}),
    ...(config.idle_timeout ? { idleTimeoutMs: config.idle_timeout * 1000 } : {}),
  };
  switch (config.kind) {
    case "local":
      return localProvider(local, name);
    case "openai":
      return new OpenAICompatibleProvider(common);
    case "anthropic":
      return new AnthropicProvider({
        ...common,
        ...(config.max_tokens ? { defaultMaxTokens: config.max_tokens } : {}),
      });
    case "ollama":
      return new OllamaProvider(common);
    default:
      return config.kind satisfies never;
  }
}

/** Builds the table from freehold.yaml (null: no file, everything local as without routing). */
export function buildRoutingTable(file: FileConfig | null, local: ModelPort, offline: boolean): RoutingTable {
  const localOne = localProvider(local);
  const providers = new Map<string, Provider & { healthCheckMs: number }>();
  providers.set("local", Object.assign(localOne, { healthCheckMs: 0 }));
  for (const [name, config] of Object.entries(file?.providers ?? {}))
    providers.set(
      name,
      Object.assign(createProvider(name, config, local), { healthCheckMs: (config.health_check ?? 0) * 1000 }),
    );
  const routes = new Map<string, Route>();
  for (const [name, config] of Object.entries(file?.routes ?? {})) {
    const tiers = config.targets.map((tier) =>
      ("balance" in tier ? tier.balance : [tier]).map((target) => {
        const provider = providers.get(target.provider)!;
        const providerTimeout = file?.providers[target.provider]?.timeout;
        const timeout = target.timeout ?? providerTimeout;
        return new TargetState(
          provider,
          target.model,
          target.weight,
          timeout ? timeout * 1000 : DEFAULT_TIMEOUT_MS,
          new CircuitBreaker(config.breaker.failures, config.breaker.cooldown * 1000),
        );
      }),
    );
    routes.set(name, {
      name,
      tiers,
      policy: config.privacy ?? file?.privacy.default ?? "local-only",
      retries: config.retries,
      backoffMs: config.backoff * 1000,
      maxRetryWaitMs: config.max_retry_wait * 1000,
    });
  }
  return {
    local: localOne,
    providers,
    routes,
    detectors: compileDetectors(file?.privacy ?? {}),
    scanBudget: {
      maxChars: file?.privacy.max_scan_chars ?? defaultScanBudget.maxChars,
      maxMs: file?.privacy.max_scan_ms ?? defaultScanBudget.maxMs,
    },
    keys: file?.keys ?? {},
    offline,
  };
}

/** Every place a configuration could send data to, and why (`freehold doctor --egress`). */
export function egressDestinations(
  file: FileConfig | null,
): { origin: string; provider: string; kind: string; routes: string[]; healthChecks: boolean }[] {
  return Object.entries(file?.providers ?? {})
    .filter(([, provider]) => provider.kind !== "local" && provider.base_url)
    .map(([name, provider]) => ({
      origin: new URL(provider.base_url!).origin,
      provider: name,
      kind: provider.kind,
      routes: Object.entries(file?.routes ?? {})
        .filter(([, route]) =>
          route.targets.some((tier) => ("balance" in tier ? tier.balance : [tier]).some((t) => t.provider === name)),
        )
        .map(([routeName]) => routeName),
      healthChecks: (provider.health_check ?? 0) > 0,
    }));
}
