import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Hono } from "hono";
import { loadConfig } from "../src/config/config.js";
import { loadSettings } from "../src/config/fileConfig.js";
import { ControlPlane } from "../src/control/controlPlane.js";
import type { AppEnv } from "../src/http/appEnv.js";
import { originAllowed } from "../src/http/origins.js";
import { temporaryDirectory } from "./helpers/paths.js";
import { buildApp, concrete, reached, routesOf } from "./helpers/stubApp.js";

/**
 * The standing cross-site suite (issue 13 item 2), against the out-of-the-box state: a keyless loopback server.
 * Requests are shaped as a browser sends them: an Origin header on every cross-origin request and every POST, and
 * the body types a page may send without a CORS preflight (text/plain, form, multipart).
 */
const foreignOrigins = [
  "https://evil.example",
  "http://evil.example:11435",
  "null",
  "http://127.0.0.1.evil.example",
  "http://localhost.evil.example",
  "http://evil.example/http://localhost",
  "https://localhost@evil.example",
  "file://",
  "http://[::2]",
  "http://0.0.0.0:11435",
];
const loopbackOrigins = [
  "http://localhost",
  "http://localhost:3000",
  "https://127.0.0.1:8443",
  "http://127.9.8.7",
  "http://[::1]:5173",
];
/** Bodies a page can send cross-site with no preflight, and other non-JSON types. */
const nonJsonTypes = [
  "text/plain",
  "text/plain;charset=UTF-8",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "application/jsonp",
  "text/json",
  "application/xml",
];
const jsonTypes = ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON;charset=UTF-8"];
const body = JSON.stringify({ model: "stories", name: "stories", source: "stories", destination: "copy" });

async function send(app: Hono<AppEnv>, method: string, path: string, headers: Record<string, string>) {
  const start = reached.length;
  const response = await app.request(`http://127.0.0.1:11435${path}`, {
    method,
    headers: { host: "127.0.0.1:11435", ...headers },
    // Bytes, not a string: a string body would make the Request add text/plain by itself.
    ...(method === "GET" || method === "HEAD" ? {} : { body: new TextEncoder().encode(body) }),
  });
  return { response, text: await response.text(), reached: reached.slice(start) };
}

describe("cross-site use of a keyless loopback server", () => {
  const home = temporaryDirectory();
  let control: ControlPlane;
  let app: Hono<AppEnv>;
  let stateChanging: { method: string; path: string }[];
  before(() => {
    control = new ControlPlane({ home: home.path, logLevel: "silent" });
    app = buildApp(control);
    stateChanging = routesOf(app)
      .filter((route) => !["GET", "HEAD"].includes(route.method))
      .map((route) => ({ method: route.method, path: concrete(route.path) }));
  });
  after(() => {
    control.close();
    home.dispose();
  });

  test("a page from another origin reaches no route, with any body type (403, no CORS headers)", async () => {
    const leaks: string[] = [];
    assert.ok(stateChanging.length >= 15, `${stateChanging.length} state-changing routes`);
    const everyRoute = routesOf(app).map((route) => ({ method: route.method, path: concrete(route.path) }));
    for (const route of everyRoute)
      for (const origin of foreignOrigins)
        for (const type of [...nonJsonTypes, ...jsonTypes]) {
          const result = await send(app, route.method, route.path, { origin, "content-type": type });
          if (result.response.status !== 403 || result.reached.length > 0)
            leaks.push(`${route.method} ${route.path} from ${origin} (${type}): ${result.response.status}`);
          if (result.response.headers.get("access-control-allow-origin"))
            leaks.push(`${route.method} ${route.path} from ${origin}: CORS header sent`);
          if (route.method === "GET") break;
        }
    assert.deepEqual(leaks, []);
  });

  test("a body that is not declared JSON is never parsed as JSON: 415 on every route that reads one", async () => {
    const leaks: string[] = [];
    for (const route of stateChanging)
      for (const type of nonJsonTypes)
        for (const origin of [...loopbackOrigins.slice(0, 2), undefined]) {
          const result = await send(app, route.method, route.path, {
            "content-type": type,
            ...(origin ? { origin } : {}),
          });
          if (result.reached.length > 0) leaks.push(`${route.method} ${route.path} (${type}, ${origin}): reached`);
          // /api/push reads no body: it answers 501 whatever is sent.
          if (route.path !== "/api/push" && result.response.status !== 415)
            leaks.push(`${route.method} ${route.path} (${type}, ${origin}): ${result.response.status}`);
        }
    assert.deepEqual(leaks, []);
  });

  test("a body with no Content-Type: accepted from a script (no Origin), refused from a page", async () => {
    const scripted = await send(app, "POST", "/api/copy", {});
    assert.notEqual(scripted.response.status, 415);
    assert.deepEqual(scripted.reached, ["catalog.copy"]);
    const fromPage = await send(app, "POST", "/api/copy", { origin: "http://localhost:3000" });
    assert.equal(fromPage.response.status, 415);
    assert.deepEqual(fromPage.reached, []);
  });

  test("loopback pages with a JSON body are served, with CORS headers; so are scripts with no Origin", async () => {
    const wrong: string[] = [];
    for (const route of stateChanging)
      for (const origin of [...loopbackOrigins, undefined])
        for (const type of jsonTypes) {
          const result = await send(app, route.method, route.path, {
            "content-type": type,
            ...(origin ? { origin } : {}),
          });
          if ([403, 415].includes(result.response.status))
            wrong.push(`${route.method} ${route.path} (${origin}, ${type}): ${result.response.status}`);
          const allowOrigin = result.response.headers.get("access-control-allow-origin");
          if (allowOrigin !== (origin ?? null))
            wrong.push(`${route.method} ${route.path} (${origin}): Access-Control-Allow-Origin ${allowOrigin}`);
        }
    assert.deepEqual(wrong, []);
  });

  test("415 comes in each API's own error shape", async () => {
    const headers = { "content-type": "text/plain" };
    const openai = JSON.parse((await send(app, "POST", "/v1/chat/completions", headers)).text) as {
      error: { code: string; message: string };
    };
    assert.equal(openai.error.code, "unsupported_media_type");
    assert.match(openai.error.message, /Content-Type: application\/json/);
    const anthropic = JSON.parse((await send(app, "POST", "/v1/messages", headers)).text) as {
      type: string;
      error: { type: string; message: string };
    };
    assert.equal(anthropic.type, "error");
    assert.equal(anthropic.error.type, "invalid_request_error");
    const ollama = JSON.parse((await send(app, "POST", "/api/chat", headers)).text) as { error: string };
    assert.match(ollama.error, /Content-Type is "text\/plain"/);
  });

  test("preflights: answered (204) for loopback pages with the asked headers; refused (403) for others", async () => {
    const ask = {
      "access-control-request-method": "POST",
      "access-control-request-headers": "authorization, content-type, x-stainless-os",
    };
    const allowed = await send(app, "OPTIONS", "/v1/chat/completions", { origin: "http://localhost:5173", ...ask });
    assert.equal(allowed.response.status, 204);
    assert.equal(allowed.response.headers.get("access-control-allow-origin"), "http://localhost:5173");
    assert.equal(
      allowed.response.headers.get("access-control-allow-headers"),
      "authorization, content-type, x-stainless-os",
    );
    assert.match(allowed.response.headers.get("access-control-allow-methods") ?? "", /POST/);
    const refused = await send(app, "OPTIONS", "/v1/chat/completions", { origin: "https://evil.example", ...ask });
    assert.equal(refused.response.status, 403);
    assert.equal(refused.response.headers.get("access-control-allow-origin"), null);
    const odd = await send(app, "OPTIONS", "/api/chat", {
      origin: "http://localhost",
      "access-control-request-method": "POST",
      "access-control-request-headers": "x-a;evil=1",
    });
    assert.equal(odd.response.headers.get("access-control-allow-headers"), null, "only a plain header list is echoed");
  });
});

describe("FREEHOLD_ORIGINS", () => {
  test("listed origins are allowed exactly, by a prefix ending in *, or all with *; nothing else", () => {
    const listed = ["https://app.example.com", "chrome-extension://*", "http://tools.example:8080/"];
    assert.equal(originAllowed("https://app.example.com", listed), true);
    assert.equal(originAllowed("HTTPS://APP.EXAMPLE.COM", listed), true);
    assert.equal(originAllowed("chrome-extension://abcdef", listed), true);
    assert.equal(originAllowed("http://tools.example:8080", listed), true);
    for (const origin of [
      "https://app.example.com.evil.net",
      "http://app.example.com",
      "https://app.example.com:444",
      "https://evil.example",
      "moz-extension://abc",
      "null",
      "http://tools.example:808",
    ])
      assert.equal(originAllowed(origin, listed), false, origin);
    assert.equal(originAllowed("null", ["*"]), true);
  });

  test("an app given origins serves those pages and still refuses the rest", async () => {
    const home = temporaryDirectory();
    const control = new ControlPlane({ home: home.path, logLevel: "silent" });
    try {
      const app = buildApp(control, { allowedOrigins: ["https://app.example.com"] });
      const ok = await send(app, "GET", "/api/version", { origin: "https://app.example.com" });
      assert.equal(ok.response.status, 200);
      assert.equal(ok.response.headers.get("access-control-allow-origin"), "https://app.example.com");
      const refused = await send(app, "GET", "/api/version", { origin: "https://other.example.com" });
      assert.equal(refused.response.status, 403);
      assert.match(refused.text, /FREEHOLD_ORIGINS/);
    } finally {
      control.close();
      home.dispose();
    }
  });

  test("the configuration reads FREEHOLD_ORIGINS, and refuses an entry that is not an origin, naming it", () => {
    const config = loadConfig({}, { FREEHOLD_ORIGINS: "https://a.example, chrome-extension://*" });
    assert.deepEqual(config.origins, ["https://a.example", "chrome-extension://*"]);
    assert.deepEqual(loadConfig({}, {}).origins, []);
    assert.throws(
      () => loadConfig({}, { FREEHOLD_ORIGINS: "https://a.example/path" }),
      /FREEHOLD_ORIGINS.*scheme:\/\/host\[:port\]/,
    );
    assert.throws(() => loadConfig({}, { FREEHOLD_ORIGINS: "evil.example" }), /FREEHOLD_ORIGINS/);
  });

  test("freehold.yaml's server.origins is read, and FREEHOLD_ORIGINS beats it", () => {
    const directory = temporaryDirectory();
    try {
      const path = join(directory.path, "freehold.yaml");
      writeFileSync(path, 'server:\n  origins: ["https://console.example", "moz-extension://*"]\n');
      const fromFile = loadSettings({ configPath: path }, { FREEHOLD_HOME: directory.path });
      assert.deepEqual(fromFile.config.origins, ["https://console.example", "moz-extension://*"]);
      const fromEnv = loadSettings(
        { configPath: path },
        { FREEHOLD_HOME: directory.path, FREEHOLD_ORIGINS: "https://other.example" },
      );
      assert.deepEqual(fromEnv.config.origins, ["https://other.example"]);
      writeFileSync(path, 'server:\n  origins: ["https://console.example/app"]\n');
      assert.throws(() => loadSettings({ configPath: path }, { FREEHOLD_HOME: directory.path }), /origins/);
    } finally {
      directory.dispose();
    }
  });
});
