import { useEffect, useState } from "preact/hooks";
import { authHeaders, errorText, formatBytes, getJson, lines, sendJson } from "../api.js";

interface Installed {
  name: string;
  size: number;
  details: { family: string; quantization_level: string; parameter_size: string };
}

interface Loaded {
  name: string;
  size: number;
  expires_at: string;
  details: { state: string; slots: number; active_requests: number; queued_requests: number; backend?: string };
}

interface Progress {
  status: string;
  completed: number;
  total: number;
}

export function Models() {
  const [installed, setInstalled] = useState<Installed[]>([]);
  const [loaded, setLoaded] = useState<Loaded[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [source, setSource] = useState("");
  const [progress, setProgress] = useState<Progress | null>(null);

  const refresh = async () => {
    try {
      const [tags, ps] = await Promise.all([
        getJson<{ models: Installed[] }>("/api/tags"),
        getJson<{ models: Loaded[] }>("/api/ps"),
      ]);
      setInstalled(tags.models);
      setLoaded(ps.models);
    } catch (failure) {
      setError(errorText(failure));
    }
  };
  useEffect(() => {
    void refresh();
  }, []);

  const act = async (what: string, action: () => Promise<unknown>) => {
    setError(null);
    setNotice(null);
    try {
      await action();
      setNotice(what);
    } catch (failure) {
      setError(errorText(failure));
    }
    await refresh();
  };

  const pull = async () => {
    setError(null);
    setNotice(null);
    setProgress({ status: "starting", completed: 0, total: 0 });
    try {
      const response = await fetch("/api/pull", {
        method: "POST",
        headers: authHeaders({ "content-type": "application/json" }),
        body: JSON.stringify({ model: source.trim(), stream: true }),
      });
      if (!response.ok) {
        const body = (await response.json().catch(() => ({}))) as { error?: string };
        throw new Error(body.error ?? `the server answered HTTP ${response.status}`);
      }
      for await (const line of lines(response)) {
        const event = JSON.parse(line) as { status?: string; completed?: number; total?: number; error?: string };
        if (event.error) throw new Error(event.error);
        setProgress((previous) => ({
          status: event.status ?? previous?.status ?? "",
          completed: event.completed ?? previous?.completed ?? 0,
          total: event.total ?? previous?.total ?? 0,
        }));
      }
      setNotice(`Pulled ${source.trim()}.`);
    } catch (failure) {
      setError(errorText(failure));
    }
    await refresh();
  };

  const percent = progress && progress.total > 0 ? Math.round((progress.completed / progress.total) * 100) : 0;

  return (
    <div>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {notice && <p role="status">{notice}</p>}
      <section aria-label="Installed models">
        <h2>Installed</h2>
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Size</th>
              <th>Quantization</th>
              <th>Family</th>
              <th>Parameters</th>
              <th>Projector</th>
              <th>Actions</th>
            </tr>
          </thead>
          <tbody>
            {installed.map((model) => (
              <tr key={model.name}>
                <td>{model.name}</td>
                <td>{formatBytes(model.size)}</td>
                <td>{model.details.quantization_level}</td>
                <td>{model.details.family}</td>
                <td>{model.details.parameter_size}</td>
                <td title="freehold's store holds text models; multimodal projectors are not installed">none</td>
                <td class="actions">
                  <button
                    type="button"
                    aria-label={`Load ${model.name}`}
                    onClick={() =>
                      act(`Loaded ${model.name}.`, () =>
                        sendJson("POST", "/api/generate", { model: model.name, stream: false }),
                      )
                    }
                  >
                    Load
                  </button>
                  <button
                    type="button"
                    aria-label={`Remove ${model.name}`}
                    onClick={() => {
                      if (confirm(`Remove ${model.name} from this machine?`))
                        void act(`Removed ${model.name}.`, () =>
                          sendJson("DELETE", "/api/delete", { model: model.name }),
                        );
                    }}
                  >
                    Remove
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <section aria-label="Pull a model">
        <h2>Pull</h2>
        <form
          class="row"
          onSubmit={(event) => {
            event.preventDefault();
            void pull();
          }}
        >
          <label>
            Model to pull
            <input
              value={source}
              placeholder="hf.co/owner/repo:Q4_K_M"
              onInput={(e) => setSource(e.currentTarget.value)}
            />
          </label>
          <button type="submit" disabled={!source.trim()}>
            Pull
          </button>
        </form>
        {progress && (
          <div>
            <progress aria-label="Pull progress" max={100} value={percent} />
            <span>
              {progress.status} {progress.total > 0 ? `${percent}% (${formatBytes(progress.completed)})` : ""}
            </span>
          </div>
        )}
      </section>
      <section aria-label="Loaded models">
        <h2>Loaded now</h2>
        {loaded.length === 0 ? (
          <p>No model is loaded.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th>Memory</th>
                <th>State</th>
                <th>Slots</th>
                <th>Running</th>
                <th>Queued</th>
                <th>Kept until</th>
                <th>Actions</th>
              </tr>
            </thead>
            <tbody>
              {loaded.map((model) => (
                <tr key={model.name}>
                  <td>{model.name}</td>
                  <td>{formatBytes(model.size)}</td>
                  <td>{model.details.state}</td>
                  <td>{model.details.slots}</td>
                  <td>{model.details.active_requests}</td>
                  <td>{model.details.queued_requests}</td>
                  <td>{new Date(model.expires_at).toLocaleString()}</td>
                  <td>
                    <button
                      type="button"
                      aria-label={`Unload ${model.name}`}
                      onClick={() =>
                        act(`Unloaded ${model.name}.`, () =>
                          sendJson("POST", "/freehold/unload", { model: model.name }),
                        )
                      }
                    >
                      Unload
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </div>
  );
}
