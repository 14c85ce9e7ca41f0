import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import type { ChatRequest } from "../src/core/chat.js";
import { InvalidRequestError } from "../src/core/errors.js";
import { type PendingChatRequest, resolveImages } from "../src/http/images.js";
import { HttpImageFetcher, type ImageFetcherOptions, parseHostRules } from "../src/providers/imageFetch.js";
import { addressProblem, ipv6Groups } from "../src/providers/publicAddress.js";
import { pngBase64 } from "./helpers/images.js";

/**
 * Image URLs (FREEHOLD_IMAGE_FETCH): the fetcher is a server-side request a client steers, so the production
 * path (no seams) must refuse every non-public address in every spelling, every scheme but http(s), userinfo,
 * unlisted hosts and ports; and the limits (size, time, redirects, image bytes) hold against a hostile upstream.
 * The happy paths need the test server on 127.0.0.1, which production refuses: those tests use the fetcher's
 * explicit seams (a resolver for a made-up name, and an address check that lets 127.0.0.1 through).
 */

const png = Buffer.from(pngBase64(), "base64");
const MiB = 1024 * 1024;
let server: Server;
let port: number;
let slowBodies = 0;

function slowly(response: ServerResponse): void {
  slowBodies++;
  response.writeHead(200, { "content-type": "image/png" });
  response.write(png.subarray(0, 8));
  const timer = setInterval(() => response.write(Buffer.from([0])), 200);
  response.on("close", () => clearInterval(timer));
}

before(async () => {
  server = createServer((request, response) => {
    const path = new URL(request.url ?? "/", "http://test").pathname;
    if (path === "/cat.png") return void response.writeHead(200, { "content-type": "image/png" }).end(png);
    if (path === "/redirect-ok") return void response.writeHead(302, { location: "/cat.png" }).end();
    if (path === "/redirect-metadata")
      return void response.writeHead(302, { location: "http://169.254.169.254/latest/meta-data/" }).end();
    if (path === "/redirect-private") return void response.writeHead(307, { location: "http://10.0.0.7/x.png" }).end();
    if (path === "/redirect-loopback")
      return void response.writeHead(301, { location: `http://[::1]:${port}/cat.png` }).end();
    if (path === "/redirect-userinfo")
      return void response.writeHead(302, { location: `http://user:pw@images.test:${port}/cat.png` }).end();
    if (path === "/redirect-file") return void response.writeHead(302, { location: "file:///etc/passwd" }).end();
    if (path === "/loop") return void response.writeHead(302, { location: "/loop" }).end();
    if (path === "/big-declared") {
      response.writeHead(200, { "content-type": "image/png", "content-length": String(9 * MiB) });
      return void response.write(png); // then nothing: the fetcher must not wait for the rest
    }
    if (path === "/big-streamed") {
      response.writeHead(200, { "content-type": "image/png" }); // chunked, no Content-Length
      const chunk = Buffer.alloc(MiB);
      let sent = 0;
      const pump = () => {
        while (sent < 10 && response.write(chunk)) sent++;
        if (sent < 10) response.once("drain", pump);
        else response.end();
      };
      return pump();
    }
    if (path === "/slow-body") return slowly(response);
    if (path === "/slow-headers") return; // never answers
    if (path === "/reset") return void request.socket.destroy();
    if (path === "/short") {
      response.writeHead(200, { "content-length": "1000" });
      response.write(png);
      return void setTimeout(() => request.socket.destroy(), 50);
    }
    if (path === "/text")
      return void response.writeHead(200, { "content-type": "image/png" }).end("hello, not an image");
    if (path === "/secret-404") return void response.writeHead(404).end("SECRET-BODY-CANARY");
    response.writeHead(404).end();
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  port = (server.address() as AddressInfo).port;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

/** The production path: only the owner's host list; no resolver or address seams. */
function production(hosts: string[], timeoutMs = 3000): HttpImageFetcher {
  return new HttpImageFetcher({ hosts: parseHostRules(hosts), timeoutMs });
}

/** The seams: images.test (and its subdomains) resolve to 127.0.0.1, and 127.0.0.1 is let through. */
function seamed(extra: Partial<ImageFetcherOptions> = {}, hosts = [`images.test:${0}`]): HttpImageFetcher {
  return new HttpImageFetcher({
    hosts: parseHostRules(hosts.map((host) => host.replace(":0", `:${port}`))),
    timeoutMs: 2000,
    resolve: async (hostname) =>
      hostname === "images.test" || hostname.endsWith(".images.test")
        ? [{ address: "127.0.0.1", family: 4 }]
        : [{ address: "93.184.215.14", family: 4 }],
    addressProblem: (address) => (address === "127.0.0.1" ? undefined : addressProblem(address)),
    ...extra,
  });
}

async function refusal(promise: Promise<unknown>): Promise<InvalidRequestError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof InvalidRequestError, `a 400, not ${String(error)}`);
    return error;
  }
  assert.fail("the fetch was expected to be refused");
}

const field = "messages[0].content[0].image_url.url";
const fetchWith = (fetcher: HttpImageFetcher, url: string) => fetcher.fetchImage(url, field, { maxBytes: 8 * MiB });

describe("the production fetcher refuses every address that is not public, in every spelling", () => {
  test("literal IPs in every notation the URL parser normalises (decimal, octal, hex, short, IPv6 forms)", async () => {
    const fetcher = production(["*"]);
    const urls = [
      "http://127.0.0.1/x.png",
      "http://2130706433/x.png", // decimal
      "http://017700000001/x.png", // octal
      "http://0x7f000001/x.png", // hex
      "http://0x7f.1/x.png", // hex, short form
      "http://127.1/x.png",
      "http://0/x.png",
      "http://[::1]/x.png",
      "http://[::ffff:127.0.0.1]/x.png", // IPv4-mapped
      "http://[::ffff:7f00:1]/x.png",
      "http://[::127.0.0.1]/x.png", // IPv4-compatible
      "http://[64:ff9b::127.0.0.1]/x.png", // NAT64
      "http://[2002:7f00:1::]/x.png", // 6to4
      "http://[::]/x.png",
      "http://169.254.169.254/latest/meta-data/", // cloud metadata
      "http://[::ffff:169.254.169.254]/latest/meta-data/",
      "http://10.1.2.3/x.png",
      "http://172.16.0.1/x.png",
      "http://192.168.1.1/x.png",
      "http://100.64.0.1/x.png", // CGNAT
      "http://[fd00::1]/x.png", // ULA
      "http://[fe80::1]/x.png", // link-local
      "http://224.0.0.1/x.png", // multicast
      "http://255.255.255.255/x.png", // broadcast
      "https://0.0.0.0/x.png",
    ];
    for (const url of urls) {
      const error = await refusal(fetchWith(fetcher, url));
      assert.equal(error.code, "image_url_not_allowed", `${url}: ${error.message}`);
      assert.equal(error.param, field);
      assert.match(error.message, /address, which is never fetched/, url);
    }
  });

  test("a listed name that resolves to loopback (localhost) is refused, even with its port listed", async () => {
    const error = await refusal(fetchWith(production([`localhost:${port}`]), `http://localhost:${port}/cat.png`));
    assert.equal(error.code, "image_url_not_allowed");
    assert.match(error.message, /loopback address/);
    const literal = await refusal(fetchWith(production([`127.0.0.1:${port}`]), `http://127.0.0.1:${port}/cat.png`));
    assert.match(literal.message, /loopback/);
  });

  test("every address a name resolves to is checked: one private among public ones refuses the name", async () => {
    const fetcher = new HttpImageFetcher({
      hosts: parseHostRules(["mixed.example"]),
      timeoutMs: 2000,
      resolve: async () => [
        { address: "93.184.215.14", family: 4 },
        { address: "10.0.0.1", family: 4 },
      ],
    });
    const error = await refusal(fetchWith(fetcher, "https://mixed.example/x.png"));
    assert.match(error.message, /private/);
  });

  test("schemes, userinfo, unlisted hosts and ports: refused before any connection", async () => {
    const fetcher = production(["images.example.com", "*.cdn.example"]);
    const cases: [string, RegExp][] = [
      ["ftp://images.example.com/x.png", /ftp: URLs are not fetched/],
      ["file:///etc/passwd", /file: URLs are not fetched/],
      ["gopher://images.example.com/", /gopher: URLs/],
      ["http://user:secret@images.example.com/x.png", /user name or password/],
      ["http://user@images.example.com/x.png", /user name or password/],
      ["http://other.example.com/x.png", /other\.example\.com is not a host this server fetches/],
      ["http://images.example.com.evil.test/x.png", /is not a host/],
      ["http://cdn.example/x.png", /is not a host/], // *.cdn.example is its subdomains only
      ["http://images.example.com:8080/x.png", /is not a host/], // unlisted port
      ["http://images.example.com:22/x.png", /is not a host/],
      ["not a url", /not a valid URL/],
    ];
    for (const [url, message] of cases) {
      const error = await refusal(fetchWith(fetcher, url));
      assert.equal(error.code, "image_url_not_allowed", url);
      assert.match(error.message, message, url);
      assert.match(error.message, /data: URI/, "says what to do instead");
    }
  });

  test("the address check, as a table: public addresses pass, the rest say why", () => {
    for (const address of ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::8.8.8.8"])
      assert.equal(addressProblem(address), undefined, address);
    const refused: [string, RegExp][] = [
      ["127.255.255.254", /loopback/],
      ["0.1.2.3", /unspecified/],
      ["172.31.255.255", /private/],
      ["198.18.0.1", /benchmarking/],
      ["192.0.2.1", /documentation/],
      ["240.0.0.1", /reserved/],
      ["::ffff:10.0.0.1", /IPv4-mapped private/],
      ["64:ff9b:1::1", /local-use NAT64/],
      ["2001:0:4136:e378::1", /Teredo/],
      ["2001:db8::1", /documentation/],
      ["fc00::1", /unique local/],
      ["febf::1", /link-local/],
      ["ff02::1", /multicast/],
      ["100::1", /not global unicast/],
      ["not-an-ip", /not an IP/],
    ];
    for (const [address, why] of refused) assert.match(addressProblem(address) ?? "(allowed)", why, address);
    assert.deepEqual(ipv6Groups("::ffff:1.2.3.4"), [0, 0, 0, 0, 0, 0xffff, 0x102, 0x304]);
    assert.equal(ipv6Groups("1::2::3"), undefined);
  });

  test("host entries: host, *.domain, * and :port; anything else is an error that says the form", () => {
    assert.deepEqual(parseHostRules(["Images.Example.com", "*.cdn.example:8443", "*"]), [
      { host: "images.example.com" },
      { host: "*.cdn.example", port: 8443 },
      { host: "*" },
    ]);
    for (const bad of ["http://a.example", "a.example/x", "user@a.example", "*a.example", "a.example:0", "a.*.example"])
      assert.throws(() => parseHostRules([bad]), /use host, \*\.domain or \*/, bad);
  });
});

describe("fetching from a listed host (test seams: a made-up name resolving to 127.0.0.1)", () => {
  test("an image comes back; the connection went to the checked address, resolved once (no DNS rebinding)", async () => {
    let lookups = 0;
    const records: unknown[] = [];
    const fetcher = seamed({
      // images.test exists nowhere: node resolving it itself would fail, so success means the pinned address was used.
      resolve: async () => {
        lookups++;
        return [{ address: "127.0.0.1", family: 4 }];
      },
      onFetch: (record) => records.push(record),
    });
    const bytes = await fetchWith(fetcher, `http://images.test:${port}/cat.png?token=SECRET`);
    assert.deepEqual(bytes, png);
    assert.equal(lookups, 1);
    assert.equal(records.length, 1);
    const record = records[0] as { host: string; bytes: number };
    assert.equal(record.host, `images.test:${port}`);
    assert.equal(record.bytes, png.length);
    assert.doesNotMatch(JSON.stringify(records), /SECRET|cat\.png/, "the log line has no path or query");
  });

  test("*.domain matches subdomains; a redirect on the same host is followed", async () => {
    const fetcher = seamed({}, ["*.images.test:0"]);
    assert.deepEqual(await fetchWith(fetcher, `http://a.images.test:${port}/redirect-ok`), png);
  });

  test("redirects are checked hop by hop: to metadata, private, loopback, userinfo, file:, or too many", async () => {
    const fetcher = seamed({}, ["images.test:0", "*", "*:0"]);
    const cases: [string, string, RegExp][] = [
      ["/redirect-metadata", "image_url_not_allowed", /link-local/],
      ["/redirect-private", "image_url_not_allowed", /private/],
      ["/redirect-loopback", "image_url_not_allowed", /loopback/],
      ["/redirect-userinfo", "image_url_not_allowed", /user name or password/],
      ["/redirect-file", "image_url_not_allowed", /file: URLs/],
      ["/loop", "image_fetch_failed", /more than 3 redirects/],
    ];
    for (const [path, code, message] of cases) {
      const error = await refusal(fetchWith(fetcher, `http://images.test:${port}${path}`));
      assert.equal(error.code, code, path);
      assert.match(error.message, message, path);
    }
  });

  test("too large: by Content-Length before reading, and while streaming without one", async () => {
    const fetcher = seamed();
    for (const path of ["/big-declared", "/big-streamed"]) {
      const started = Date.now();
      const error = await refusal(fetchWith(fetcher, `http://images.test:${port}${path}`));
      assert.equal(error.code, "image_fetch_failed", path);
      assert.match(error.message, /larger than 8 MiB/, path);
      assert.ok(Date.now() - started < 1500, `${path}: refused without waiting for the rest`);
    }
  });

  test("a slow body and an upstream that never answers end at the deadline, as 400s", async () => {
    const fetcher = seamed({ timeoutMs: 600 });
    for (const path of ["/slow-body", "/slow-headers"]) {
      const started = Date.now();
      const error = await refusal(fetchWith(fetcher, `http://images.test:${port}${path}`));
      assert.equal(error.code, "image_fetch_failed", path);
      assert.match(error.message, /no complete answer within 0\.6 s/, path);
      assert.ok(Date.now() - started < 1500, path);
    }
    assert.ok(slowBodies > 0);
  });

  test("errors, resets and broken-off bodies are 400s that never quote the body", async () => {
    const fetcher = seamed();
    const cases: [string, RegExp][] = [
      ["/secret-404", /answered HTTP 404/],
      ["/reset", /connection failed|broke off/],
      ["/short", /broke off/],
    ];
    for (const [path, message] of cases) {
      const error = await refusal(fetchWith(fetcher, `http://images.test:${port}${path}`));
      assert.equal(error.code, "image_fetch_failed", path);
      assert.match(error.message, message, path);
      assert.doesNotMatch(error.message, /SECRET-BODY-CANARY/);
    }
    const closed = await refusal(fetchWith(seamed({}, ["images.test:1"]), "http://images.test:1/x.png"));
    assert.match(closed.message, /connection failed \(ECONNREFUSED\)/);
  });

  test("a DNS answer that never comes ends at the deadline too", async () => {
    const fetcher = seamed({ timeoutMs: 300, resolve: () => new Promise(() => undefined) });
    const started = Date.now();
    const error = await refusal(fetchWith(fetcher, `http://images.test:${port}/cat.png`));
    assert.equal(error.code, "image_fetch_failed");
    assert.match(error.message, /no complete answer within 0\.3 s/);
    assert.ok(Date.now() - started < 1000);
  });

  test("the client's abort stops the fetch", async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const started = Date.now();
    await refusal(
      seamed().fetchImage(`http://images.test:${port}/slow-headers`, field, {
        maxBytes: MiB,
        signal: controller.signal,
      }),
    );
    assert.ok(Date.now() - started < 1000);
  });
});

describe("resolveImages: URLs become checked image bytes, or 400s naming the field", () => {
  const request = (...urls: string[]): PendingChatRequest => ({
    kind: "chat",
    model: "m",
    sampling: {},
    limits: {},
    messages: [{ role: "user", content: "x", images: urls.map((url, index) => ({ url, field: `f[${index}]` })) }],
  });

  test("without a fetcher (the default) a URL is image_url_not_allowed, saying how to allow or avoid it", async () => {
    const error = await refusal(resolveImages(request("https://example.com/a.png"), undefined));
    assert.equal(error.code, "image_url_not_allowed");
    assert.equal(error.param, "f[0]");
    assert.match(error.message, /FREEHOLD_IMAGE_FETCH/);
    assert.match(error.message, /data: URI/);
  });

  test("fetched bytes are sniffed: a non-image is image_fetch_failed, an image becomes base64 with its type", async () => {
    const fetcher = seamed();
    const error = await refusal(resolveImages(request(`http://images.test:${port}/text`), fetcher));
    assert.equal(error.code, "image_fetch_failed");
    assert.doesNotMatch(error.message, /hello/);
    const resolved: ChatRequest = await resolveImages(
      request(`http://images.test:${port}/cat.png`, `http://images.test:${port}/redirect-ok`),
      fetcher,
    );
    assert.deepEqual(resolved.messages[0]!.images, [
      { mediaType: "image/png", data: pngBase64() },
      { mediaType: "image/png", data: pngBase64() },
    ]);
  });

  test("one failing image fails the request with its own field", async () => {
    const error = await refusal(
      resolveImages(request(`http://images.test:${port}/cat.png`, `http://images.test:${port}/secret-404`), seamed()),
    );
    assert.equal(error.param, "f[1]");
  });
});
