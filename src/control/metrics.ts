import { Counter, Gauge, Histogram, Registry } from "prom-client";

/** What the metrics read from the engine at scrape time (the engine's status, structurally). */
export interface RuntimeStatus {
  models: readonly {
    name: string;
    state: string;
    activeRequests: number;
    queuedRequests: number;
    memory: number;
    restarts: number;
  }[];
}

export interface RequestObservation {
  model: string;
  keyName: string | null;
  provider: string;
  status: number;
  promptTokens: number;
  completionTokens: number;
  durationMs: number;
  ttftMs: number | null;
  /** Speculative decoding: drafted tokens the model accepted and rejected. */
  draftTokens?: { accepted: number; rejected: number };
}

/**
 * Prometheus metrics in their own registry (never the global one). Names follow OpenTelemetry's gen-ai
 * conventions where one exists. Labels are model, key *name*, provider and status: never a secret or content.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly requests;
  private readonly tokens;
  private readonly duration;
  private readonly ttft;
  private readonly httpRequests;
  private readonly mcpCalls;
  private readonly draftTokens;
  private readonly mcpDuration;
  private status: () => RuntimeStatus = () => ({ models: [] });

  constructor() {
    const registers = [this.registry];
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
      new Counter({ name, help, labelNames, registers });
    const histogram = <L extends string>(name: string, help: string, labelNames: readonly L[], buckets: number[]) =>
      new Histogram({ name, help, labelNames, buckets, registers });
    this.requests = counter(
      "freehold_requests_total",
      "Model requests answered, by model, key name, provider and status",
      ["model", "key", "provider", "status"],
    );
    this.tokens = counter(
      "gen_ai_client_token_usage_total",
      "Tokens used, by model, key name and type (input or output)",
      ["model", "key", "type"],
    );
    this.duration = histogram(
      "gen_ai_server_request_duration_seconds",
      "Time from admission to the end of the answer",
      ["model", "provider"],
      [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    );
    this.draftTokens = counter(
      "freehold_draft_tokens_total",
      "Speculative decoding: tokens a draft model proposed, by model and outcome (accepted or rejected); acceptance rate = accepted / (accepted + rejected)",
      ["model", "outcome"],
    );
    this.mcpCalls = counter(
      "freehold_mcp_calls_total",
      "MCP tool calls, by server, tool and status (ok, tool_error, error, refused, cancelled)",
      ["server", "tool", "status"],
    );
    this.mcpDuration = histogram(
      "freehold_mcp_call_duration_seconds",
      "Time one MCP tool call took",
      ["server"],
      [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    );
    this.ttft = histogram(
      "gen_ai_server_time_to_first_token_seconds",
      "Time from admission to the first generated token",
      ["model", "provider"],
      [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    );
    this.httpRequests = counter(
      "freehold_http_requests_total",
      "HTTP requests by API surface and status (including those refused before reaching a model)",
      ["api", "status"],
    );
    const status = () => this.status();
    // One gauge a model, read from the engine's status at scrape time.
    const perModel = (name: string, help: string, value: (model: RuntimeStatus["models"][number]) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ["model"] as const,
        registers,
        collect() {
          this.reset();
          for (const model of status().models) this.set({ model: model.name }, value(model));
        },
      });
    perModel("freehold_queue_depth", "Requests waiting for a slot, by model", (model) => model.queuedRequests);
    perModel("freehold_slots_in_use", "Requests being generated now, by model", (model) => model.activeRequests);
    new Gauge({
      name: "freehold_models_loaded",
      help: "Models loaded (or loading) in runner processes",
      registers,
      collect() {
        this.set(status().models.length);
      },
    });
    perModel(
      "freehold_model_memory_bytes",
      "Estimated memory of each loaded model (weights, KV cache, buffers)",
      (model) => model.memory,
    );
    perModel(
      "freehold_runner_restarts",
      "Times each model's runner process was restarted after a crash",
      (model) => model.restarts,
    );
  }

  /** Where gauges read the engine's state from at scrape time. */
  setStatusSource(source: () => RuntimeStatus): void {
    this.status = source;
  }

  observeRequest(observation: RequestObservation): void {
    const key = observation.keyName ?? "";
    // A model that does not exist is any string a client sent: one label value for all of them, not one each.
    const model = observation.status === 404 ? "(unknown)" : observation.model;
    const { provider } = observation;
    this.requests.inc({ model, key, provider, status: String(observation.status) });
    this.tokens.inc({ model, key, type: "input" }, observation.promptTokens);
    this.tokens.inc({ model, key, type: "output" }, observation.completionTokens);
    this.duration.observe({ model, provider }, observation.durationMs / 1000);
    if (observation.ttftMs !== null) this.ttft.observe({ model, provider }, observation.ttftMs / 1000);
    if (observation.draftTokens) {
      this.draftTokens.inc({ model, outcome: "accepted" }, observation.draftTokens.accepted);
      this.draftTokens.inc({ model, outcome: "rejected" }, observation.draftTokens.rejected);
    }
  }

  /** Tool names come from the owner's configured servers (the gateway calls only listed tools), so labels stay few. */
  observeMcpCall(observation: { server: string; tool: string; status: string; durationMs: number }): void {
    this.mcpCalls.inc({ server: observation.server, tool: observation.tool, status: observation.status });
    this.mcpDuration.observe({ server: observation.server }, observation.durationMs / 1000);
  }

  observeHttp(api: string, status: number): void {
    this.httpRequests.inc({ api, status: String(status) });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
