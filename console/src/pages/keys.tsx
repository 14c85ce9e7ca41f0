import { useEffect, useState } from "preact/hooks";
import { errorText, getJson, sendJson } from "../api.js";

interface Key {
  id: string;
  name: string;
  admin: boolean;
  models: string[] | null;
  rpm: number | null;
  tpm: number | null;
  daily_tokens: number | null;
  budget_usd: number | null;
  local_only: boolean;
  revoked_at: string | null;
  expires_at: string | null;
}

/** The limit fields both forms share, as the admin API names them; "" = no limit. */
const limitFields = [
  { name: "rpm", label: "Requests per minute" },
  { name: "tpm", label: "Tokens per minute" },
  { name: "daily_tokens", label: "Tokens per day" },
  { name: "budget_usd", label: "Budget (USD)" },
] as const;
type Limits = Record<(typeof limitFields)[number]["name"], string>;

const toLimits = (key?: Key): Limits => ({
  rpm: key?.rpm?.toString() ?? "",
  tpm: key?.tpm?.toString() ?? "",
  daily_tokens: key?.daily_tokens?.toString() ?? "",
  budget_usd: key?.budget_usd?.toString() ?? "",
});
const limitBody = (limits: Limits) =>
  Object.fromEntries(Object.entries(limits).map(([name, value]) => [name, value === "" ? null : Number(value)]));

function LimitInputs(props: { limits: Limits; onChange: (limits: Limits) => void }) {
  return (
    <>
      {limitFields.map((field) => (
        <label key={field.name}>
          {field.label}
          <input
            type="number"
            min="0"
            step={field.name === "budget_usd" ? "0.01" : "1"}
            value={props.limits[field.name]}
            onInput={(e) => props.onChange({ ...props.limits, [field.name]: e.currentTarget.value })}
          />
        </label>
      ))}
    </>
  );
}

export function Keys() {
  const [keys, setKeys] = useState<Key[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [creating, setCreating] = useState(false);
  const [name, setName] = useState("");
  const [admin, setAdmin] = useState(false);
  const [localOnly, setLocalOnly] = useState(false);
  const [models, setModels] = useState("");
  const [limits, setLimits] = useState<Limits>(toLimits());
  const [secret, setSecret] = useState<{ name: string; secret: string } | null>(null);
  const [copied, setCopied] = useState(false);
  const [editing, setEditing] = useState<{ id: string; limits: Limits } | null>(null);
  const [showRevoked, setShowRevoked] = useState(false);

  const refresh = () =>
    getJson<{ data: Key[] }>(`/admin/keys${showRevoked ? "?revoked=true" : ""}`)
      .then((list) => setKeys(list.data))
      .catch((failure) => setError(errorText(failure)));
  useEffect(() => {
    void refresh();
  }, [showRevoked]);

  const run = async (action: () => Promise<void>) => {
    setError(null);
    try {
      await action();
    } catch (failure) {
      setError(errorText(failure));
    }
    await refresh();
  };

  const create = () =>
    run(async () => {
      const scoped = models
        .split(",")
        .map((model) => model.trim())
        .filter(Boolean);
      const created = await sendJson<{ secret: string; key: Key }>("POST", "/admin/keys", {
        name: name.trim(),
        admin,
        local_only: localOnly,
        ...(scoped.length > 0 ? { models: scoped } : {}),
        ...limitBody(limits),
      });
      setSecret({ name: created.key.name, secret: created.secret });
      setCopied(false);
      setCreating(false);
      setName("");
      setModels("");
      setLimits(toLimits());
    });

  return (
    <div>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {secret && (
        <section aria-label="New key secret" class="secret">
          <p>
            The secret of <strong>{secret.name}</strong>, shown this once (freehold keeps only its hash):
          </p>
          <code>{secret.secret}</code>
          <button
            type="button"
            onClick={() =>
              navigator.clipboard.writeText(secret.secret).then(
                () => setCopied(true),
                () => setError("The browser refused the clipboard: select the secret and copy it by hand."),
              )
            }
          >
            Copy
          </button>
          {copied && <span role="status">Copied.</span>}
          <button type="button" onClick={() => setSecret(null)}>
            Done
          </button>
        </section>
      )}
      <div class="row">
        <button type="button" aria-expanded={creating} onClick={() => setCreating(!creating)}>
          Create key
        </button>
        <label class="inline">
          <input type="checkbox" checked={showRevoked} onChange={(e) => setShowRevoked(e.currentTarget.checked)} />
          Show revoked keys
        </label>
      </div>
      {creating && (
        <form
          aria-label="New key"
          class="card"
          onSubmit={(event) => {
            event.preventDefault();
            void create();
          }}
        >
          <label>
            Name
            <input value={name} required maxLength={64} onInput={(e) => setName(e.currentTarget.value)} />
          </label>
          <label>
            Models (comma-separated; empty = any)
            <input value={models} onInput={(e) => setModels(e.currentTarget.value)} />
          </label>
          <LimitInputs limits={limits} onChange={setLimits} />
          <label class="inline">
            <input type="checkbox" checked={admin} onChange={(e) => setAdmin(e.currentTarget.checked)} />
            Admin
          </label>
          <label class="inline">
            <input type="checkbox" checked={localOnly} onChange={(e) => setLocalOnly(e.currentTarget.checked)} />
            Local only (never leaves this machine)
          </label>
          <button type="submit" disabled={!name.trim()}>
            Create
          </button>
        </form>
      )}
      <table aria-label="Keys">
        <thead>
          <tr>
            <th>Name</th>
            <th>Admin</th>
            <th>Models</th>
            <th>Limits</th>
            <th>Status</th>
            <th>Actions</th>
          </tr>
        </thead>
        <tbody>
          {keys.map((key) => (
            <tr key={key.id}>
              <td>{key.name}</td>
              <td>{key.admin ? "yes" : "no"}</td>
              <td>{key.models?.join(", ") ?? "any"}</td>
              <td>
                {editing?.id === key.id ? (
                  <form
                    aria-label={`Limits of ${key.name}`}
                    onSubmit={(event) => {
                      event.preventDefault();
                      void run(async () => {
                        await sendJson("PATCH", `/admin/keys/${encodeURIComponent(key.id)}`, limitBody(editing.limits));
                        setEditing(null);
                      });
                    }}
                  >
                    <LimitInputs
                      limits={editing.limits}
                      onChange={(next) => setEditing({ id: key.id, limits: next })}
                    />
                    <button type="submit">Save</button>
                  </form>
                ) : (
                  [
                    key.rpm !== null && `${key.rpm} rpm`,
                    key.tpm !== null && `${key.tpm} tpm`,
                    key.daily_tokens !== null && `${key.daily_tokens} tokens/day`,
                    key.budget_usd !== null && `$${key.budget_usd} budget`,
                    key.local_only && "local only",
                  ]
                    .filter(Boolean)
                    .join(", ") || "none"
                )}
              </td>
              <td>{key.revoked_at ? `revoked ${new Date(key.revoked_at).toLocaleString()}` : "active"}</td>
              <td class="actions">
                {!key.revoked_at && (
                  <>
                    <button
                      type="button"
                      aria-label={`Edit limits of ${key.name}`}
                      onClick={() => setEditing({ id: key.id, limits: toLimits(key) })}
                    >
                      Edit limits
                    </button>
                    <button
                      type="button"
                      aria-label={`Revoke ${key.name}`}
                      onClick={() =>
                        void run(async () => {
                          await sendJson("POST", `/admin/keys/${encodeURIComponent(key.id)}/revoke`, {});
                        })
                      }
                    >
                      Revoke
                    </button>
                  </>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
