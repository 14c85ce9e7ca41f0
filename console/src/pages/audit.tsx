import { useEffect, useState } from "preact/hooks";
import { errorText, getJson } from "../api.js";

interface Entry {
  seq: number;
  time: string;
  actor: string;
  action: string;
  target?: string | null;
  requestId?: string | null;
}

interface Verification {
  ok: boolean;
  entries: number;
  problem?: string;
}

export function Audit() {
  const [entries, setEntries] = useState<Entry[]>([]);
  const [action, setAction] = useState("");
  const [actor, setActor] = useState("");
  const [limit, setLimit] = useState("100");
  const [verification, setVerification] = useState<Verification | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = () => {
    const query = new URLSearchParams({ limit: limit || "100" });
    if (action.trim()) query.set("action", action.trim());
    if (actor.trim()) query.set("actor", actor.trim());
    setError(null);
    getJson<{ entries: Entry[] }>(`/admin/audit?${query}`)
      .then((trail) => setEntries([...trail.entries].reverse()))
      .catch((failure) => setError(errorText(failure)));
  };
  useEffect(load, []);

  const verify = () =>
    getJson<Verification>("/admin/audit/verify")
      .then(setVerification)
      .catch((failure) => setError(errorText(failure)));

  return (
    <div>
      <form
        class="row"
        aria-label="Filters"
        onSubmit={(event) => {
          event.preventDefault();
          load();
        }}
      >
        <label>
          Action starts with
          <input value={action} placeholder="key." onInput={(e) => setAction(e.currentTarget.value)} />
        </label>
        <label>
          Actor
          <input value={actor} placeholder="key:admin" onInput={(e) => setActor(e.currentTarget.value)} />
        </label>
        <label>
          Limit
          <input type="number" min="1" max="10000" value={limit} onInput={(e) => setLimit(e.currentTarget.value)} />
        </label>
        <button type="submit">Filter</button>
        <button type="button" onClick={() => void verify()}>
          Verify
        </button>
      </form>
      {verification && (
        <p role="status" class={verification.ok ? "ok" : "error"}>
          {verification.ok
            ? `The chain is intact: ${verification.entries} entries, each hash follows the one before.`
            : `The chain is broken: ${verification.problem}`}
        </p>
      )}
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      <table aria-label="Audit entries">
        <thead>
          <tr>
            <th>#</th>
            <th>Time</th>
            <th>Actor</th>
            <th>Action</th>
            <th>Target</th>
            <th>Request</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((entry) => (
            <tr key={entry.seq}>
              <td>{entry.seq}</td>
              <td>{new Date(entry.time).toLocaleString()}</td>
              <td>{entry.actor}</td>
              <td>{entry.action}</td>
              <td>{entry.target ?? ""}</td>
              <td>{entry.requestId ?? ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
