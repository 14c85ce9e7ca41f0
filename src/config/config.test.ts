import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigValueError, loadConfig, parseHostSetting } from "./config.js";

const empty = {} as NodeJS.ProcessEnv;

test("FREEHOLD_HOST reads as OLLAMA_HOST does: host, host:port, [v6]:port, bare v6, URL", () => {
  assert.deepEqual(parseHostSetting("0.0.0.0"), { host: "0.0.0.0" });
  assert.deepEqual(parseHostSetting("0.0.0.0:12345"), { host: "0.0.0.0", port: 12345 });
  assert.deepEqual(parseHostSetting(" localhost:80 "), { host: "localhost", port: 80 });
  assert.deepEqual(parseHostSetting("[::1]:9000"), { host: "::1", port: 9000 });
  assert.deepEqual(parseHostSetting("[::1]"), { host: "::1" });
  assert.deepEqual(parseHostSetting("::1"), { host: "::1" });
  assert.deepEqual(parseHostSetting("fe80::1:2"), { host: "fe80::1:2" });
  assert.deepEqual(parseHostSetting("http://example.com:8080/"), { host: "example.com", port: 8080 });
  assert.deepEqual(parseHostSetting("http://example.com"), { host: "example.com", port: 80 });
  assert.deepEqual(parseHostSetting("https://example.com"), { host: "example.com", port: 443 });
  assert.deepEqual(parseHostSetting("http://[::1]:7"), { host: "::1", port: 7 });
  // An empty host never means "every interface".
  assert.deepEqual(parseHostSetting(":12345"), { host: "127.0.0.1", port: 12345 });
  for (const bad of ["host:port", "host:99999", "host:-1", "host:", "ftp://host", "http://"])
    assert.throws(() => parseHostSetting(bad), ConfigValueError, bad);
});

test("host and port come from FREEHOLD_HOST unless FREEHOLD_PORT or a flag says otherwise; disagreement is an error", () => {
  assert.equal(loadConfig({}, { FREEHOLD_HOST: "0.0.0.0:12345" }).port, 12345);
  assert.equal(loadConfig({}, { FREEHOLD_HOST: "0.0.0.0:12345" }).host, "0.0.0.0");
  assert.equal(loadConfig({}, { FREEHOLD_HOST: "0.0.0.0" }).port, 11435);
  assert.equal(loadConfig({}, { FREEHOLD_HOST: "0.0.0.0", FREEHOLD_PORT: "9" }).port, 9);
  assert.equal(loadConfig({ port: 5 }, { FREEHOLD_HOST: "0.0.0.0:5" }).port, 5);
  assert.throws(() => loadConfig({ port: 6 }, { FREEHOLD_HOST: "0.0.0.0:5" }), /FREEHOLD_HOST names port 5 but --port/);
  assert.throws(() => loadConfig({ host: "h:x" }, empty), /--host: "h:x" has a port that is not a number/);
});

test("FREEHOLD_KEEP_ALIVE takes what the HTTP keep_alive takes", () => {
  const seconds = (value: string) => loadConfig({}, { FREEHOLD_KEEP_ALIVE: value }).keepAliveSeconds;
  assert.equal(seconds("5m"), 300);
  assert.equal(seconds("1h30m"), 5400);
  assert.equal(seconds("90s"), 90);
  assert.equal(seconds("120"), 120);
  assert.equal(seconds("-1"), -1);
  assert.equal(seconds("-5m"), -1);
  assert.equal(loadConfig({}, empty).keepAliveSeconds, 300);
  assert.equal(loadConfig({ keepAliveSeconds: "2m" }, { FREEHOLD_KEEP_ALIVE: "5m" }).keepAliveSeconds, 120);
  assert.throws(() => seconds("soon"), /FREEHOLD_KEEP_ALIVE="soon": must be seconds or a duration/);
  assert.throws(() => loadConfig({ keepAliveSeconds: "soon" }, empty), /keepAliveSeconds \("soon"\): must be/);
});

test("an invalid value names the environment variable the person set, not the internal field", () => {
  assert.throws(() => loadConfig({}, { FREEHOLD_PORT: "eleven" }), /FREEHOLD_PORT="eleven"/);
  assert.throws(() => loadConfig({}, { FREEHOLD_PARALLEL: "0" }), /FREEHOLD_PARALLEL="0"/);
  assert.throws(() => loadConfig({}, { FREEHOLD_MEMORY_BUDGET: "lots" }), /FREEHOLD_MEMORY_BUDGET="lots"/);
  assert.throws(() => loadConfig({}, { HF_ENDPOINT: "ftp://x" }), /HF_ENDPOINT="ftp:\/\/x"/);
  // A flag's value is named as the setting, not as a variable the person did not set.
  assert.throws(() => loadConfig({ parallel: 0 }, { FREEHOLD_PARALLEL: "2" }), /for parallel \(0\)/);
});

test("FREEHOLD_API_KEY is the CLI's key", () => {
  assert.equal(loadConfig({}, { FREEHOLD_API_KEY: "fh-secret" }).apiKey, "fh-secret");
  assert.equal(loadConfig({}, empty).apiKey, undefined);
});

test("FREEHOLD_KV_CACHE_TYPE and FREEHOLD_FLASH_ATTENTION: the values Ollama and llama.cpp take, and bad ones name the variable", () => {
  assert.equal(loadConfig({}, empty).kvCacheType, "f16");
  assert.equal(loadConfig({}, empty).flashAttention, "auto");
  for (const type of ["f16", "q8_0", "q4_0", "Q8_0"])
    assert.equal(loadConfig({}, { FREEHOLD_KV_CACHE_TYPE: type }).kvCacheType, type.toLowerCase());
  for (const mode of ["auto", "on", "off", "ON"])
    assert.equal(loadConfig({}, { FREEHOLD_FLASH_ATTENTION: mode }).flashAttention, mode.toLowerCase());
  for (const bad of ["q5_0", "bf16", "f32", "q8"])
    assert.throws(
      () => loadConfig({}, { FREEHOLD_KV_CACHE_TYPE: bad }),
      new RegExp(`FREEHOLD_KV_CACHE_TYPE=${JSON.stringify(bad)}.*f16.*q8_0.*q4_0`),
    );
  for (const bad of ["yes", "1", "enabled"])
    assert.throws(
      () => loadConfig({}, { FREEHOLD_FLASH_ATTENTION: bad }),
      new RegExp(`FREEHOLD_FLASH_ATTENTION=${JSON.stringify(bad)}`),
    );
  // llama.cpp quantizes the V cache only with flash attention: the pair is refused, naming both variables.
  assert.throws(
    () => loadConfig({}, { FREEHOLD_KV_CACHE_TYPE: "q4_0", FREEHOLD_FLASH_ATTENTION: "off" }),
    /FREEHOLD_KV_CACHE_TYPE=q4_0 with FREEHOLD_FLASH_ATTENTION=off: a q4_0 KV cache needs flash attention/,
  );
  assert.equal(
    loadConfig({}, { FREEHOLD_KV_CACHE_TYPE: "f16", FREEHOLD_FLASH_ATTENTION: "off" }).flashAttention,
    "off",
  );
  assert.equal(loadConfig({ kvCacheType: "q8_0" }, { FREEHOLD_KV_CACHE_TYPE: "f16" }).kvCacheType, "q8_0");
});

test("an empty variable is unset, as in a compose file's FOO=: the default, never the current directory or an error", () => {
  const blank = Object.fromEntries(
    ["FREEHOLD_HOME", "FREEHOLD_PORT", "FREEHOLD_THREADS", "FREEHOLD_PARALLEL", "FREEHOLD_LOG_LEVEL"].map((name) => [
      name,
      "",
    ]),
  );
  const config = loadConfig({}, blank);
  const defaults = loadConfig({}, empty);
  assert.equal(config.port, 11435);
  assert.equal(config.home, defaults.home);
  assert.notEqual(config.home, process.cwd());
  assert.equal(config.parallel, 4);
  assert.equal(config.logLevel, "info");
});
