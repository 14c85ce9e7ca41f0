import { useEffect, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { authHeaders, errorText, formatUsd, getJson } from "../api.js";

interface Line {
  group: Record<string, string>;
  requests: number;
  errors: number;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
  equivalentUsd: number;
  savedUsd: number;
}

const ranges = [
  { value: "24h", label: "Last 24 hours", bucket: "hour", buckets: 24 },
  { value: "7d", label: "Last 7 days", bucket: "day", buckets: 7 },
  { value: "30d", label: "Last 30 days", bucket: "day", buckets: 30 },
] as const;

/** A bucket label ("2026-11-30T04:00Z" or "2026-11-30") as seconds since the epoch, for uPlot's time axis. */
const bucketSeconds = (label: string) =>
  Date.parse(label.length === 10 ? `${label}T00:00:00Z` : label.replace("Z", ":00Z")) / 1000;

/**
 * Every bucket of the range, oldest first, with the ledger's totals where it has a line and zero where it has none
 * (the ledger only groups hours or days that saw traffic; a chart needs the quiet ones too).
 */
function series(lines: Line[], bucket: "hour" | "day", count: number, pick: ((line: Line) => number)[]): number[][] {
  const step = bucket === "hour" ? 3600 : 86400;
  const last = Math.floor(Date.now() / 1000 / step) * step;
  const times = Array.from({ length: count }, (_, index) => last - (count - 1 - index) * step);
  const byTime = new Map<number, Line[]>();
  for (const line of lines) {
    const time = bucketSeconds(line.group[bucket]!);
    byTime.set(time, [...(byTime.get(time) ?? []), line]);
  }
  // Several lines per bucket when the ledger was also grouped by key, model or provider: their sum.
  const total = (time: number, value: (line: Line) => number) =>
    (byTime.get(time) ?? []).reduce((sum, line) => sum + value(line), 0);
  return [times, ...pick.map((value) => times.map((time) => total(time, value)))];
}

const palette = ["#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#ca8a04"];
const splits = [
  { value: "", label: "Prompt and completion" },
  { value: "key", label: "Key" },
  { value: "model", label: "Model" },
  { value: "provider", label: "Provider" },
] as const;

const usdAxis = (values: number[]) => values.map((value) => formatUsd(value));

/** A uPlot chart inside a figure that carries its accessible name (a canvas has none of its own). */
function Chart(props: { title: string; series: { label: string; color: string }[]; data: number[][]; usd?: boolean }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!box.current) return;
    const plot = new uPlot(
      {
        width: Math.min(720, box.current.clientWidth || 720),
        height: 220,
        series: [
          {},
          ...props.series.map((s) => ({ label: s.label, stroke: s.color, width: 2, points: { show: true } })),
        ],
        axes: [{}, { size: 90, ...(props.usd ? { values: (_: uPlot, splits: number[]) => usdAxis(splits) } : {}) }],
      },
      props.data as uPlot.AlignedData,
      box.current,
    );
    return () => plot.destroy();
  }, [props.data]);
  return (
    <figure role="img" aria-label={props.title}>
      <figcaption>{props.title}</figcaption>
      <div ref={box} class="chart" />
    </figure>
  );
}

export function Usage(props: { admin: boolean }) {
  const [range, setRange] = useState<(typeof ranges)[number]["value"]>("24h");
  const [split, setSplit] = useState<(typeof splits)[number]["value"]>("");
  const [overTime, setOverTime] = useState<Line[]>([]);
  const [table, setTable] = useState<Line[]>([]);
  const [error, setError] = useState<string | null>(null);
  const { bucket, buckets } = ranges.find((r) => r.value === range)!;

  useEffect(() => {
    setError(null);
    Promise.all([
      getJson<{ data: Line[] }>(`/freehold/usage?by=${bucket}${split ? `,${split}` : ""}&since=${range}`),
      getJson<{ data: Line[] }>(`/freehold/usage?by=key,model,provider&since=${range}`),
    ])
      .then(([time, groups]) => {
        setOverTime(time.data);
        setTable(groups.data);
      })
      .catch((failure) => setError(errorText(failure)));
  }, [range, split]);

  // Split by key, model or provider: one line of total tokens per value (the eight most used have colours of their own).
  const names = split ? [...new Set(overTime.map((line) => line.group[split]!))] : [];
  const tokenSeries = split
    ? names.map((name, index) => ({ label: name, color: palette[index % palette.length]! }))
    : [
        { label: "Prompt tokens", color: "#2563eb" },
        { label: "Completion tokens", color: "#16a34a" },
      ];
  const tokens = series(
    overTime,
    bucket,
    buckets,
    split
      ? names.map((name) => (l: Line) => (l.group[split] === name ? l.promptTokens + l.completionTokens : 0))
      : [(l) => l.promptTokens, (l) => l.completionTokens],
  );
  const cost = series(overTime, bucket, buckets, [(l) => l.costUsd, (l) => l.equivalentUsd]);

  const download = async () => {
    try {
      const response = await fetch(`/freehold/usage?by=key,model,provider&since=${range}&format=csv`, {
        headers: authHeaders(),
      });
      if (!response.ok) throw new Error(`the server answered HTTP ${response.status}`);
      const url = URL.createObjectURL(await response.blob());
      const link = document.createElement("a");
      link.href = url;
      link.download = `freehold-usage-${range}.csv`;
      link.click();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    } catch (failure) {
      setError(errorText(failure));
    }
  };

  const saved = table.reduce((sum, line) => sum + line.savedUsd, 0);
  return (
    <div>
      <div class="row">
        <label>
          Range
          <select aria-label="Range" value={range} onChange={(e) => setRange(e.currentTarget.value as typeof range)}>
            {ranges.map((r) => (
              <option key={r.value} value={r.value}>
                {r.label}
              </option>
            ))}
          </select>
        </label>
        <label>
          Split tokens by
          <select
            aria-label="Split tokens by"
            value={split}
            onChange={(e) => setSplit(e.currentTarget.value as typeof split)}
          >
            {splits.map((choice) => (
              <option key={choice.value} value={choice.value}>
                {choice.label}
              </option>
            ))}
          </select>
        </label>
        <button type="button" onClick={() => void download()}>
          Download CSV
        </button>
      </div>
      {!props.admin && <p class="hint">Your key's own usage.</p>}
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {overTime.length === 0 ? (
        <p>No requests in this range yet.</p>
      ) : (
        <>
          <Chart title="Tokens over time" series={tokenSeries} data={tokens} />
          <Chart
            title="Cost vs the paid equivalent"
            series={[
              { label: "Cost (USD)", color: "#dc2626" },
              { label: "Paid equivalent (USD)", color: "#9333ea" },
            ]}
            data={cost}
            usd
          />
        </>
      )}
      <p>
        Saved by running locally in this range: <strong>{formatUsd(saved)}</strong>
      </p>
      <table aria-label="Usage by key, model and provider">
        <thead>
          <tr>
            <th>Key</th>
            <th>Model</th>
            <th>Provider</th>
            <th>Requests</th>
            <th>Errors</th>
            <th>Prompt tokens</th>
            <th>Completion tokens</th>
            <th>Cost</th>
            <th>Paid equivalent</th>
            <th>Saved</th>
          </tr>
        </thead>
        <tbody>
          {table.map((line, index) => (
            <tr key={index}>
              <td>{line.group.key}</td>
              <td>{line.group.model}</td>
              <td>{line.group.provider}</td>
              <td>{line.requests}</td>
              <td>{line.errors}</td>
              <td>{line.promptTokens}</td>
              <td>{line.completionTokens}</td>
              <td>{formatUsd(line.costUsd)}</td>
              <td>{formatUsd(line.equivalentUsd)}</td>
              <td>{formatUsd(line.savedUsd)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
