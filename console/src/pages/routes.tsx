import { useEffect, useState } from "preact/hooks";
import { errorText, getJson } from "../api.js";

interface Target {
  provider: string;
  kind: string;
  model: string;
  origin: string | null;
  weight: number;
  healthy: boolean;
  in_flight: number;
  breaker: string;
  breaker_retry_in_ms: number;
}

interface Route {
  name: string;
  policy: string;
  retries: number;
  tiers: Target[][];
}

interface Decision {
  requestId: string;
  at: string;
  model: string;
  route: string | null;
  outcome: string;
  servedBy: { provider: string; model: string; remote: boolean } | null;
  explanation: string[];
}

export function RoutesPage() {
  const [routes, setRoutes] = useState<Route[]>([]);
  const [decisions, setDecisions] = useState<Decision[]>([]);
  const [requestId, setRequestId] = useState("");
  const [explained, setExplained] = useState<Decision | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    getJson<{ routes: Route[]; recent_decisions: Decision[] }>("/admin/routes")
      .then((body) => {
        setRoutes(body.routes);
        setDecisions(body.recent_decisions);
      })
      .catch((failure) => setError(errorText(failure)));
  }, []);

  const explain = (id: string) => {
    setError(null);
    getJson<Decision>(`/freehold/explain/${encodeURIComponent(id.trim())}`)
      .then(setExplained)
      .catch((failure) => {
        setExplained(null);
        setError(errorText(failure));
      });
  };

  return (
    <div>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {routes.length === 0 && <p>No routes: freehold.yaml defines none, so every request is served on this machine.</p>}
      {routes.map((route) => (
        <section key={route.name} aria-label={`Route ${route.name}`}>
          <h2>
            {route.name} <small>privacy: {route.policy}</small>
          </h2>
          <table>
            <thead>
              <tr>
                <th>Tier</th>
                <th>Target</th>
                <th>Where</th>
                <th>Health</th>
                <th>Breaker</th>
                <th>In flight</th>
              </tr>
            </thead>
            <tbody>
              {route.tiers.flatMap((tier, index) =>
                tier.map((target) => (
                  <tr key={`${index}-${target.provider}-${target.model}`}>
                    <td>{index + 1}</td>
                    <td>
                      {target.provider}/{target.model}
                    </td>
                    <td>{target.origin ?? "this machine"}</td>
                    <td>{target.healthy ? "healthy" : "unhealthy"}</td>
                    <td>
                      {target.breaker}
                      {target.breaker_retry_in_ms > 0
                        ? ` (retry in ${Math.ceil(target.breaker_retry_in_ms / 1000)} s)`
                        : ""}
                    </td>
                    <td>{target.in_flight}</td>
                  </tr>
                )),
              )}
            </tbody>
          </table>
        </section>
      ))}
      <form
        class="row"
        onSubmit={(event) => {
          event.preventDefault();
          explain(requestId);
        }}
      >
        <label>
          Request id
          <input value={requestId} placeholder="req_…" onInput={(e) => setRequestId(e.currentTarget.value)} />
        </label>
        <button type="submit" disabled={!requestId.trim()}>
          Explain
        </button>
      </form>
      {explained && (
        <section aria-label="Why it went there" class="card">
          <h2>{explained.requestId}</h2>
          <ul>
            {explained.explanation.map((line, index) => (
              <li key={index}>{line}</li>
            ))}
          </ul>
        </section>
      )}
      <h2>Recent decisions</h2>
      <table aria-label="Recent decisions">
        <thead>
          <tr>
            <th>When</th>
            <th>Request</th>
            <th>Model</th>
            <th>Outcome</th>
            <th>Served by</th>
          </tr>
        </thead>
        <tbody>
          {decisions.map((decision) => (
            <tr key={decision.requestId}>
              <td>{new Date(decision.at).toLocaleString()}</td>
              <td>
                <button type="button" class="link" onClick={() => explain(decision.requestId)}>
                  {decision.requestId}
                </button>
              </td>
              <td>{decision.model}</td>
              <td>{decision.outcome}</td>
              <td>
                {decision.servedBy
                  ? `${decision.servedBy.provider}/${decision.servedBy.model}${decision.servedBy.remote ? " (left the machine)" : ""}`
                  : "—"}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
