import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { serve } from "@hono/node-server";
import type { Hono } from "hono";
import { ControlPlane } from "../src/control/controlPlane.js";
import type { ModelCatalog } from "../src/core/catalog.js";
import type { AppEnv } from "../src/http/appEnv.js";
import { type Access, declarationOf, guard, isAppWide } from "../src/http/guard.js";
import { temporaryDirectory } from "./helpers/paths.js";
import { buildApp, concrete, reached, recorder, routesOf } from "./helpers/stubApp.js";

/**
 * The standing authorization suite (issue 13 item 1). Who may call each route is declared on the route
 * (src/http/guard.ts); these tests walk every registered route, so a route added later without a declaration, or
 * with a weaker one than this table says, fails here.
 */
const expected: Record<string, Access> = {
  "GET /": "public",
  "GET /health": "public",
  // Readiness for load balancers (issue 17): whether the control plane answers, nothing about keys or models.
  "GET /ready": "public",
  "GET /api/version": "public",
  "POST /v1/chat/completions": "key",
  "POST /v1/completions": "key",
  "POST /v1/embeddings": "key",
  "POST /v1/rerank": "key",
  "POST /rerank": "key",
  "GET /v1/models": "key",
  "GET /v1/models/:id{.+}": "key",
  "POST /v1/responses": "key",
  "POST /v1/messages": "key",
  "POST /v1/messages/count_tokens": "key",
  "GET /api/ps": "key",
  "POST /api/chat": "key",
  "POST /api/generate": "key",
  "POST /api/embed": "key",
  "POST /api/embeddings": "key",
  "GET /api/tags": "key",
  "POST /api/show": "key",
  "GET /freehold/explain/:id": "key",
  "POST /api/copy": "admin",
  "DELETE /api/delete": "admin",
  "POST /api/pull": "admin",
  "POST /api/create": "admin",
  "POST /api/push": "admin",
  "POST /freehold/unload": "admin",
  "GET /metrics": "admin",
  "GET /admin/usage": "admin",
  "GET /admin/keys": "admin",
  "POST /admin/keys": "admin",
  "POST /admin/keys/:id/revoke": "admin",
  "GET /admin/audit": "admin",
  "PATCH /admin/keys/:id": "admin",
  "GET /admin/audit/verify": "admin",
  "GET /admin/routes": "admin",
  "GET /admin/evals": "admin",
  "GET /admin/evals/:id/report": "admin",
  "GET /freehold/whoami": "key",
  "GET /freehold/usage": "key",
  "GET /freehold/requests/:id": "key",
  // The console's files: the page holds no data, its data calls carry the key to the routes above.
  "GET /console": "public",
  "GET /console/*": "public",
};

const encodeLetter = (letter: string, upper: boolean) => {
  const hex = letter.charCodeAt(0).toString(16);
  return `%${upper ? hex.toUpperCase() : hex}`;
};

/** Other spellings of a path that a router, a proxy or a URL parser might take for the same route. */
function spellings(path: string): string[] {
  const segments = path.split("/").filter(Boolean);
  const firstLetter = path.search(/[a-z]/i);
  const variants = [
    path,
    `${path}?x=1`,
    `${path}?redirect=/admin/keys`,
    `${path}/`,
    path.toUpperCase(),
    path.replace(/[a-z]/, (letter) => letter.toUpperCase()),
    path.replace(/[a-z]/gi, (letter) => encodeLetter(letter, false)),
    path.replace(/[a-z]/gi, (letter) => encodeLetter(letter, true)),
    `/%25${path.slice(firstLetter).charCodeAt(0).toString(16)}${path.slice(firstLetter + 1)}`,
    `/${path}`,
    path.replace(/\/([^/]*)$/, "//$1"),
    `/x/..${path}`,
    `/x/%2e%2e${path}`,
    `/x/%2E%2E${path}`,
    `/.${path}`,
    `/%2e${path}`,
    `${path}/.`,
    `${path}/x/..`,
    `${path};x=1`,
    `${path}%00`,
    `${path}%20`,
    path.replace(/[a-z]/, "\uff41"),
  ];
  if (segments.length > 1) {
    variants.push(`/${segments.join("%2F")}`, `/${segments.join("%2f")}`, `/${segments.join("%5C")}`);
    variants.push(`/${segments[0]}/x/../${segments.slice(1).join("/")}`);
  }
  if (firstLetter >= 0)
    variants.push(
      `${path.slice(0, firstLetter)}${encodeLetter(path[firstLetter]!, false)}${path.slice(firstLetter + 1)}`,
    );
  return [...new Set(variants)];
}

const jsonBody = JSON.stringify({ model: "stories", name: "stories", source: "stories", destination: "copy" });

async function call(app: Hono<AppEnv>, method: string, path: string, secret?: string) {
  const headers: Record<string, string> = { host: "127.0.0.1" };
  if (secret) headers.authorization = `Bearer ${secret}`;
  const hasBody = method !== "GET" && method !== "HEAD";
  if (hasBody) headers["content-type"] = "application/json";
  const before = reached.length;
  const response = await app.request(`http://127.0.0.1${path}`, {
    method,
    headers,
    ...(hasBody ? { body: jsonBody } : {}),
  });
  const text = await response.text();
  // A 400 from a caller who should not get through must be the path refusal, never the handler's own validation.
  const refusedPath = response.status === 400 && text.includes("not spelled canonically");
  return { status: response.status, reached: reached.slice(before), refusedPath };
}

describe("route guards: every registered route × caller × path spelling", () => {
  const home = temporaryDirectory();
  let control: ControlPlane;
  let app: Hono<AppEnv>;
  const secrets: Record<"plain" | "scoped" | "admin", string> = { plain: "", scoped: "", admin: "" };
  before(async () => {
    control = new ControlPlane({ home: home.path, logLevel: "silent" });
    secrets.plain = (await control.admin.createKey("plain", {}, "test")).secret;
    secrets.scoped = (await control.admin.createKey("scoped", { models: ["stories"] }, "test")).secret;
    secrets.admin = (await control.admin.createKey("boss", { admin: true }, "test")).secret;
    app = buildApp(control);
  });
  after(() => {
    control.close();
    home.dispose();
  });

  test("every registered route declares who may call it, as this table says; none is missing from the table", () => {
    const declared: Record<string, Access | "none"> = {};
    const groups = new Map<string, unknown[]>();
    for (const route of app.routes) {
      if (isAppWide(route.handler)) continue;
      const name = `${route.method} ${route.path}`;
      groups.set(name, [...(groups.get(name) ?? []), route.handler]);
    }
    for (const [name, handlers] of groups) declared[name] = declarationOf(handlers[0])?.access ?? "none";
    assert.deepEqual(declared, expected);
    assert.ok(Object.keys(expected).length >= 30);
  });

  test("admin routes are never reached by a caller without an admin key, under any spelling of their path", async () => {
    const leaks: string[] = [];
    let checked = 0;
    for (const route of routesOf(app).filter((r) => expected[`${r.method} ${r.path}`] === "admin")) {
      for (const path of spellings(concrete(route.path))) {
        for (const caller of [undefined, secrets.plain, secrets.scoped]) {
          const result = await call(app, route.method, path, caller);
          checked++;
          const refused = [401, 403, 404].includes(result.status) || result.refusedPath;
          if (result.reached.length > 0 || !refused)
            leaks.push(`${route.method} ${path} (${caller ? "key" : "no key"}): ${result.status} ${result.reached}`);
          // Hono answers HEAD with the GET route: the same guard must hold (a HEAD answer has no body to read).
          if (route.method !== "GET") continue;
          const head = await call(app, "HEAD", path, caller);
          if (head.reached.length > 0 || head.status < 400) leaks.push(`HEAD ${path}: ${head.status} ${head.reached}`);
        }
      }
    }
    assert.deepEqual(leaks, []);
    assert.ok(checked > 400, `only ${checked} requests`);
  });

  test("key routes are never reached without a valid key, under any spelling; public routes answer without one", async () => {
    const leaks: string[] = [];
    for (const route of routesOf(app)) {
      const access = expected[`${route.method} ${route.path}`];
      if (access === "public") {
        const result = await call(app, route.method, concrete(route.path));
        // GET /console answers 301 to /console/: an answer, not a refusal.
        if (result.status !== 200 && result.status !== 301)
          leaks.push(`${route.method} ${route.path} (public): ${result.status}`);
        continue;
      }
      for (const path of spellings(concrete(route.path)))
        for (const caller of [undefined, "fh-not-a-real-key-0000000000000000000000"]) {
          const result = await call(app, route.method, path, caller);
          const refused = [401, 404].includes(result.status) || result.refusedPath;
          if (result.reached.length > 0 || !refused)
            leaks.push(`${route.method} ${path} (${caller ?? "no key"}): ${result.status} ${result.reached}`);
        }
    }
    assert.deepEqual(leaks, []);
  });

  test("the right callers do reach each route: keys for key routes, only the admin key for admin routes", async () => {
    const wrong: string[] = [];
    for (const route of routesOf(app)) {
      const access = expected[`${route.method} ${route.path}`]!;
      const path = concrete(route.path);
      const callers = access === "admin" ? [secrets.admin] : [secrets.plain, secrets.scoped, secrets.admin];
      for (const caller of callers) {
        const result = await call(app, route.method, path, caller);
        // A stub answered (or threw: 500); what matters is that authorization let the caller through.
        if ([401, 403].includes(result.status) || result.refusedPath)
          wrong.push(`${route.method} ${path}: ${result.status}`);
      }
    }
    assert.deepEqual(wrong, []);
    const refused = await call(app, "POST", "/admin/keys", secrets.plain);
    assert.equal(refused.status, 403);
  });

  test("ambiguous spellings are refused with 400 noncanonical_path; dot segments resolve to the route they name", async () => {
    for (const path of [
      "/%61dmin/keys",
      "/admin/%6Beys",
      "//admin/keys",
      "/admin//keys",
      "/api/%70ull",
      "/%6detrics",
    ]) {
      const response = await app.request(`http://127.0.0.1${path}`, {
        headers: { host: "127.0.0.1", authorization: `Bearer ${secrets.admin}` },
      });
      assert.equal(response.status, 400, path);
      const body = (await response.json()) as { error: { code: string; message: string } | string };
      const message = typeof body.error === "string" ? body.error : body.error.message;
      assert.match(message, /not spelled canonically/, path);
    }
    const dotted = await call(app, "GET", "/v1/../admin/keys", secrets.plain);
    assert.equal(dotted.status, 403, "/v1/../admin/keys is /admin/keys, and needs an admin key");
    const encodedSlash = await call(app, "GET", "/admin%2Fkeys", secrets.admin);
    assert.equal(encodedSlash.status, 404, "an encoded slash never splits a segment");
    const model = await call(app, "GET", "/v1/models/hf.co%2Forg%2Frepo", secrets.plain);
    assert.equal(model.status, 500, "the stub behind the route threw: the request was served");
    assert.ok(model.reached.length > 0, "an encoded slash inside a parameter is still served");
  });

  test("a route added without a guard is refused (500) and its handler never runs", async () => {
    let ran = false;
    const extended = buildApp(control);
    extended.get("/freehold/forgotten", (c) => {
      ran = true;
      return c.text("served");
    });
    const response = await extended.request("http://127.0.0.1/freehold/forgotten", {
      headers: { host: "127.0.0.1", authorization: `Bearer ${secrets.admin}` },
    });
    assert.equal(response.status, 500);
    assert.match(await response.text(), /declares no access guard/);
    assert.equal(ran, false);
    assert.ok(
      extended.routes.some((route) => route.path === "/freehold/forgotten" && !declarationOf(route.handler)),
      "the walk over app.routes sees it too (the table test would fail on it)",
    );
  });

  test("path-scoped middleware (static files) is guarded the same way: with a guard first it is served", async () => {
    const extended = buildApp(control);
    extended.use("/extra-static/*", guard("admin"), async (c) => c.text("console"));
    extended.use("/unguarded/*", async (c) => c.text("served"));
    const get = (path: string, secret: string) =>
      extended.request(`http://127.0.0.1${path}`, {
        headers: { host: "127.0.0.1", authorization: `Bearer ${secret}` },
      });
    assert.equal((await get("/extra-static/index.html", secrets.plain)).status, 403);
    const served = await get("/extra-static/index.html", secrets.admin);
    assert.equal(served.status, 200);
    assert.equal(await served.text(), "console");
    assert.equal((await get("/unguarded/x", secrets.admin)).status, 500);
  });

  test("administrative actions are audited by the matched route's declaration, whatever the spelling", async () => {
    const audited = buildApp(control, { catalog: recorder<ModelCatalog>("catalog", () => Promise.resolve()) });
    const entries = async () =>
      (await control.admin.auditTrail(10_000)).entries as { action: string; target?: string }[];
    const before = (await entries()).length;
    const copied = await audited.request("http://127.0.0.1/x/../api/copy", {
      method: "POST",
      headers: { host: "127.0.0.1", authorization: `Bearer ${secrets.admin}`, "content-type": "application/json" },
      body: jsonBody,
    });
    assert.equal(copied.status, 200);
    const created = await call(audited, "POST", "/admin/keys", secrets.admin);
    assert.equal(created.status, 400, "the stubbed body is not a key; refused, so not audited");
    await call(audited, "GET", "/admin/keys", secrets.admin);
    const added = (await entries()).slice(before);
    assert.deepEqual(
      added.map((entry) => [entry.action, entry.target]),
      [["POST /api/copy", "stories -> copy"]],
    );
  });
});

describe("route guards on a keyless loopback server", () => {
  const home = temporaryDirectory();
  let control: ControlPlane;
  let app: Hono<AppEnv>;
  before(() => {
    control = new ControlPlane({ home: home.path, logLevel: "silent" });
    app = buildApp(control);
  });
  after(() => {
    control.close();
    home.dispose();
  });

  test("every route is open to the owner without a key, and ambiguous spellings are still refused", async () => {
    const wrong: string[] = [];
    for (const route of routesOf(app)) {
      const path = concrete(route.path);
      const result = await call(app, route.method, path);
      if ([401, 403].includes(result.status) || result.refusedPath)
        wrong.push(`${route.method} ${path}: ${result.status} ${result.reached}`);
      const encoded = path.replace(/[a-z]/, (letter) => encodeLetter(letter, false));
      if (encoded !== path) {
        const refused = await call(app, route.method, encoded);
        if (!refused.refusedPath || refused.reached.length > 0)
          wrong.push(`${route.method} ${encoded}: ${refused.status}`);
      }
    }
    assert.deepEqual(wrong, []);
  });
});

describe("route guards over a real socket (the node adapter's own URL handling)", () => {
  const home = temporaryDirectory();
  let control: ControlPlane;
  let server: ReturnType<typeof serve>;
  let port = 0;
  let plain = "";
  before(async () => {
    control = new ControlPlane({ home: home.path, logLevel: "silent" });
    plain = (await control.admin.createKey("plain", {}, "test")).secret;
    await control.admin.createKey("boss", { admin: true }, "test");
    const app = buildApp(control);
    server = await new Promise((resolve) => {
      const instance = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(instance));
    });
    port = (server.address() as AddressInfo).port;
  });
  after(() => {
    server.close();
    control.close();
    home.dispose();
  });

  function raw(method: string, path: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const request = httpRequest(
        { host: "127.0.0.1", port, method, path, headers: { authorization: `Bearer ${plain}` } },
        (response) => {
          response.resume();
          response.on("end", () => resolve(response.statusCode ?? 0));
        },
      );
      request.on("error", reject);
      request.end();
    });
  }

  test("raw request targets that spell an admin path otherwise never reach it with a plain key", async () => {
    const targets = [
      "/%61dmin/keys",
      "//admin/keys",
      "/admin//keys",
      "/./admin/keys",
      "/v1/../admin/keys",
      "/v1/%2e%2e/admin/keys",
      "/admin/keys/",
      "/admin%2Fkeys",
      "/ADMIN/KEYS",
      "/admin/keys?x=1",
      "/admin/keys#frag",
      "http://127.0.0.1/admin/keys",
      "/%2561dmin/keys",
      "/freehold/%75nload",
      "/api/%70ull",
    ];
    const before = reached.length;
    const statuses: Record<string, number> = {};
    for (const target of targets) statuses[target] = await raw("GET", target);
    assert.deepEqual(reached.slice(before), []);
    for (const [target, status] of Object.entries(statuses))
      assert.ok([400, 403, 404].includes(status), `${target}: ${status}`);
    assert.equal(statuses["/%61dmin/keys"], 400);
    assert.equal(statuses["/v1/../admin/keys"], 403);
  });
});
