import { useEffect, useRef, useState } from "preact/hooks";
import { authHeaders, errorText, formatUsd, getJson, lines } from "../api.js";

interface Turn {
  role: "user" | "assistant";
  content: string;
}

interface Stats {
  ttftMs: number | null;
  totalMs: number;
  promptTokens: number | null;
  completionTokens: number | null;
  tokensPerSecond: number | null;
  costUsd: number | null;
  /** What the same tokens would have cost on the paid equivalent (local answers). */
  equivalentUsd: number | null;
  requestId: string | null;
}

interface Settings {
  system: string;
  temperature: string;
  maxTokens: string;
}

/** Streams one chat completion (OpenAI's SSE), calling `onText` per delta; resolves with what was measured. */
async function streamChat(
  model: string,
  messages: Turn[],
  settings: Settings,
  signal: AbortSignal,
  onText: (text: string) => void,
): Promise<Stats> {
  const started = performance.now();
  const body = {
    model,
    stream: true,
    stream_options: { include_usage: true },
    messages: [...(settings.system.trim() ? [{ role: "system", content: settings.system }] : []), ...messages],
    ...(settings.temperature !== "" ? { temperature: Number(settings.temperature) } : {}),
    ...(settings.maxTokens !== "" ? { max_tokens: Number(settings.maxTokens) } : {}),
  };
  const response = await fetch("/v1/chat/completions", {
    method: "POST",
    headers: authHeaders({ "content-type": "application/json" }),
    body: JSON.stringify(body),
    signal,
  });
  if (!response.ok) {
    const text = await response.text();
    let message = `the server answered HTTP ${response.status}`;
    try {
      message = (JSON.parse(text) as { error: { message: string } }).error.message;
    } catch {}
    throw new Error(message);
  }
  let first: number | null = null;
  let usage: { prompt_tokens: number; completion_tokens: number } | null = null;
  for await (const line of lines(response)) {
    if (!line.startsWith("data:")) continue;
    const data = line.slice(5).trim();
    if (data === "[DONE]") break;
    const chunk = JSON.parse(data) as {
      choices?: { delta?: { content?: string } }[];
      usage?: { prompt_tokens: number; completion_tokens: number } | null;
      error?: { message: string };
    };
    if (chunk.error) throw new Error(chunk.error.message);
    const text = chunk.choices?.[0]?.delta?.content;
    if (text) {
      first ??= performance.now();
      onText(text);
    }
    if (chunk.usage) usage = chunk.usage;
  }
  const ended = performance.now();
  const generating = first === null ? 0 : (ended - first) / 1000;
  return {
    ttftMs: first === null ? null : first - started,
    totalMs: ended - started,
    promptTokens: usage?.prompt_tokens ?? null,
    completionTokens: usage?.completion_tokens ?? null,
    // Tokens after the first over the time after the first: the decode speed, without the prompt's evaluation.
    tokensPerSecond:
      usage && usage.completion_tokens > 1 && generating > 0 ? (usage.completion_tokens - 1) / generating : null,
    costUsd: null,
    equivalentUsd: null,
    requestId: response.headers.get("x-request-id"),
  };
}

/**
 * The ledger's cost of one request: the provider's price plus electricity for local work, and the paid equivalent.
 * The row is written as the stream ends, so a first ask can be early: ask a few times.
 */
async function costOf(requestId: string | null): Promise<Pick<Stats, "costUsd" | "equivalentUsd">> {
  if (!requestId) return { costUsd: null, equivalentUsd: null };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const row = await getJson<{ costUsd: number; localCostUsd: number; equivalentUsd: number }>(
        `/freehold/requests/${encodeURIComponent(requestId)}`,
      );
      return { costUsd: row.costUsd + row.localCostUsd, equivalentUsd: row.equivalentUsd || null };
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
  }
  return { costUsd: null, equivalentUsd: null };
}

function StatsLine(props: { stats: Stats | null }) {
  const s = props.stats;
  if (!s) return null;
  const parts = [
    `TTFT ${s.ttftMs === null ? "—" : `${Math.round(s.ttftMs)} ms`}`,
    `${s.tokensPerSecond === null ? "—" : s.tokensPerSecond.toFixed(1)} tokens/s`,
    `latency ${Math.round(s.totalMs)} ms`,
    `${s.promptTokens ?? "?"} prompt + ${s.completionTokens ?? "?"} completion tokens`,
    `cost ${s.costUsd === null ? "—" : formatUsd(s.costUsd)}`,
    ...(s.equivalentUsd !== null ? [`paid equivalent ${formatUsd(s.equivalentUsd)}`] : []),
  ];
  return <p class="stats">{parts.join(" · ")}</p>;
}

function ModelSelect(props: { label: string; models: string[]; value: string; onChange: (value: string) => void }) {
  return (
    <label>
      {props.label}
      <select aria-label={props.label} value={props.value} onChange={(e) => props.onChange(e.currentTarget.value)}>
        {props.models.map((model) => (
          <option key={model} value={model}>
            {model}
          </option>
        ))}
      </select>
    </label>
  );
}

interface Side {
  model: string;
  text: string;
  stats: Stats | null;
  error: string | null;
}

export function Playground() {
  const [models, setModels] = useState<string[]>([]);
  const [model, setModel] = useState("");
  const [second, setSecond] = useState("");
  const [message, setMessage] = useState("");
  const [settings, setSettings] = useState<Settings>({ system: "", temperature: "0.7", maxTokens: "256" });
  const [turns, setTurns] = useState<Turn[]>([]);
  const [stats, setStats] = useState<Stats | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [compare, setCompare] = useState<Side[] | null>(null);
  const controller = useRef<AbortController | null>(null);

  useEffect(() => {
    getJson<{ data: { id: string }[] }>("/v1/models")
      .then((list) => {
        const ids = list.data.map((entry) => entry.id);
        setModels(ids);
        setModel(ids[0] ?? "");
        setSecond(ids[1] ?? ids[0] ?? "");
      })
      .catch((failure) => setError(errorText(failure)));
  }, []);

  const send = async () => {
    if (!model || !message.trim()) return;
    const history: Turn[] = [...turns, { role: "user", content: message }];
    setTurns([...history, { role: "assistant", content: "" }]);
    setMessage("");
    setError(null);
    setStats(null);
    setBusy(true);
    controller.current = new AbortController();
    let answer = "";
    try {
      const measured = await streamChat(model, history, settings, controller.current.signal, (text) => {
        answer += text;
        setTurns([...history, { role: "assistant", content: answer }]);
      });
      setStats({ ...measured, ...(await costOf(measured.requestId)) });
    } catch (failure) {
      setError(errorText(failure));
    } finally {
      setBusy(false);
    }
  };

  const runCompare = async () => {
    if (!message.trim()) return;
    const chosen = [model, second];
    const sides: Side[] = chosen.map((name) => ({ model: name, text: "", stats: null, error: null }));
    setCompare(sides.map((side) => ({ ...side })));
    setError(null);
    setBusy(true);
    controller.current = new AbortController();
    const signal = controller.current.signal;
    const update = (index: number, change: Partial<Side>) => {
      sides[index] = { ...sides[index]!, ...change };
      setCompare(sides.map((side) => ({ ...side })));
    };
    await Promise.all(
      chosen.map(async (name, index) => {
        try {
          const measured = await streamChat(name, [{ role: "user", content: message }], settings, signal, (text) =>
            update(index, { text: sides[index]!.text + text }),
          );
          update(index, { stats: { ...measured, ...(await costOf(measured.requestId)) } });
        } catch (failure) {
          update(index, { error: errorText(failure) });
        }
      }),
    );
    setBusy(false);
  };

  const field = (name: keyof Settings) => (e: { currentTarget: { value: string } }) =>
    setSettings({ ...settings, [name]: e.currentTarget.value });

  return (
    <div class="playground">
      <form
        class="controls"
        onSubmit={(event) => {
          event.preventDefault();
          void send();
        }}
      >
        <ModelSelect label="Model" models={models} value={model} onChange={setModel} />
        <details>
          <summary>Settings</summary>
          <label>
            System prompt
            <textarea rows={2} value={settings.system} onInput={field("system")} />
          </label>
          <label>
            Temperature
            <input
              type="number"
              min="0"
              max="2"
              step="0.1"
              value={settings.temperature}
              onInput={field("temperature")}
            />
          </label>
          <label>
            Max tokens
            <input type="number" min="1" step="1" value={settings.maxTokens} onInput={field("maxTokens")} />
          </label>
        </details>
        <label>
          Message
          <textarea
            rows={3}
            value={message}
            onInput={(e) => setMessage(e.currentTarget.value)}
            onKeyDown={(e) => {
              if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) void send();
            }}
          />
        </label>
        <div class="buttons">
          <button type="submit" disabled={busy || !model}>
            Send
          </button>
          <button type="button" disabled={!busy} onClick={() => controller.current?.abort()}>
            Stop
          </button>
          <button type="button" disabled={busy} onClick={() => setTurns([])}>
            Clear
          </button>
        </div>
        <fieldset>
          <legend>Compare two models</legend>
          <ModelSelect label="Second model" models={models} value={second} onChange={setSecond} />
          <button type="button" disabled={busy || !model || !second} onClick={() => void runCompare()}>
            Compare
          </button>
        </fieldset>
      </form>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      <section role="log" aria-label="Conversation" aria-live="polite" class="conversation">
        {turns.map((turn, index) => (
          <p key={index} class={`turn ${turn.role}`}>
            <span class="role">{turn.role === "user" ? "You" : "Model"}</span> {turn.content}
          </p>
        ))}
      </section>
      <StatsLine stats={stats} />
      {compare && (
        <div class="compare">
          {compare.map((side, index) => (
            <section key={index} aria-label={`Answer from ${side.model}`} class="side">
              <h2>{side.model}</h2>
              <p class="answer">{side.text}</p>
              {side.error && (
                <p role="alert" class="error">
                  {side.error}
                </p>
              )}
              <StatsLine stats={side.stats} />
            </section>
          ))}
        </div>
      )}
    </div>
  );
}
