import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, errorText, getJson, session } from "./api.js";
import { Audit } from "./pages/audit.js";
import { Evaluations } from "./pages/evaluations.js";
import { Keys } from "./pages/keys.js";
import { Models } from "./pages/models.js";
import { Playground } from "./pages/playground.js";
import { RoutesPage } from "./pages/routes.js";
import { Usage } from "./pages/usage.js";
import "./style.css";

interface Whoami {
  keys_required: boolean;
  key: { id: string; name: string } | null;
  admin: boolean;
}

const pages = [
  { id: "playground", title: "Playground", admin: false, view: () => <Playground /> },
  { id: "models", title: "Models", admin: true, view: () => <Models /> },
  { id: "usage", title: "Usage", admin: false, view: (who: Whoami) => <Usage admin={who.admin} /> },
  { id: "keys", title: "Keys", admin: true, view: () => <Keys /> },
  { id: "audit", title: "Audit", admin: true, view: () => <Audit /> },
  { id: "routes", title: "Routes", admin: true, view: () => <RoutesPage /> },
  { id: "evaluations", title: "Evaluations", admin: true, view: () => <Evaluations /> },
];

const currentPage = () => location.hash.replace(/^#\/?/, "") || "playground";

function SignIn(props: { error: string | null; onSignIn: (key: string) => void }) {
  const [key, setKey] = useState("");
  return (
    <main class="signin">
      <h1>freehold</h1>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          props.onSignIn(key.trim());
        }}
      >
        <label>
          API key
          <input type="password" autocomplete="off" value={key} onInput={(e) => setKey(e.currentTarget.value)} />
        </label>
        <button type="submit" disabled={!key.trim()}>
          Sign in
        </button>
      </form>
      {props.error && (
        <p role="alert" class="error">
          {props.error}
        </p>
      )}
      <p class="hint">The key stays in this tab only and is sent as an Authorization header.</p>
    </main>
  );
}

function App() {
  const [who, setWho] = useState<Whoami | null>(null);
  const [needsKey, setNeedsKey] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [page, setPage] = useState(currentPage());

  const check = async () => {
    try {
      setWho(await getJson<Whoami>("/freehold/whoami"));
      setNeedsKey(false);
      setError(null);
    } catch (failure) {
      if (failure instanceof ApiError && failure.status === 401) {
        if (session.key) setError(errorText(failure));
        session.clear();
        setNeedsKey(true);
      } else setError(errorText(failure));
    }
  };

  useEffect(() => {
    void check();
    const onHash = () => setPage(currentPage());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);

  if (needsKey)
    return (
      <SignIn
        error={error}
        onSignIn={(key) => {
          session.set(key);
          void check();
        }}
      />
    );
  if (!who) return <main>{error ? <p role="alert">{error}</p> : <p aria-busy="true">Connecting to freehold…</p>}</main>;

  const visible = pages.filter((candidate) => who.admin || !candidate.admin);
  const shown = visible.find((candidate) => candidate.id === page) ?? visible[0]!;
  return (
    <>
      <header>
        <strong>freehold</strong>
        <nav aria-label="Console">
          {visible.map((candidate) => (
            <a
              key={candidate.id}
              href={`#/${candidate.id}`}
              aria-current={candidate.id === shown.id ? "page" : undefined}
            >
              {candidate.title}
            </a>
          ))}
        </nav>
        <span class="who">
          {who.key ? `${who.key.name}${who.admin ? " (admin)" : ""}` : "open loopback server"}
          {who.keys_required && (
            <button
              type="button"
              onClick={() => {
                session.clear();
                setWho(null);
                setNeedsKey(true);
                setError(null);
              }}
            >
              Sign out
            </button>
          )}
        </span>
      </header>
      <main>
        <h1>{shown.title}</h1>
        {shown.view(who)}
      </main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
