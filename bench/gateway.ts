// npm run bench -- --mode gateway [--json]
//
// The gateway's own overhead: a fake OpenAI-compatible upstream on loopback (answers at once, no model), and the same
// load sent directly to it, through freehold (a route to it), and through Portkey's open-source gateway
// (@portkey-ai/gateway@1.15.2, installed on first use into $TMPDIR/freehold-bench/portkey; skipped with a note if
// that fails). Added latency = the system's latency − direct latency (p50, p99 over sequential requests); max
// requests/s at a fixed concurrency. Systems are interleaved in rounds so machine noise spreads over all of them.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Child, freePort, log, projectRoot } from "./processes.js";

const PORTKEY_VERSION = "1.15.2";
const SEQUENTIAL = 400;
const WARMUP = 50;
const CONCURRENCY = 32;
const THROUGHPUT_MS = 5000;
const ROUNDS = 2;

interface System {
  name: string;
  url: string;
  headers: Record<string, string>;
  model: string;
}

function fakeUpstream(): Promise<{ url: string; close: () => void }> {
  const answer = JSON.stringify({
    id: "chatcmpl-bench",
    object: "chat.completion",
    created: 1,
    model: "bench",
    choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
    usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 },
  });
  const stream = [
    `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: "bench", choices: [{ index: 0, delta: { role: "assistant", content: "ok" }, finish_reason: null }] })}\n\n`,
    `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: "bench", choices: [{ index: 0, delta: {}, finish_reason: "stop" }] })}\n\n`,
    `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: "bench", choices: [], usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 } })}\n\n`,
    "data: [DONE]\n\n",
  ].join("");
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => {
      body += chunk;
    });
    request.on("end", () => {
      // freehold always streams from upstreams (a non-streamed answer is a fold); answer in the form asked for.
      if (body.includes('"stream":true')) {
        response.writeHead(200, { "content-type": "text/event-stream" });
        response.end(stream);
      } else {
        response.writeHead(200, { "content-type": "application/json" });
        response.end(answer);
      }
    });
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() }),
    ),
  );
}

async function startFreehold(upstream: string): Promise<{ system: System; child: Child }> {
  const home = join(tmpdir(), "freehold-bench", `gateway-home-${process.pid}`);
  mkdirSync(home, { recursive: true });
  const config = join(home, "freehold.yaml");
  writeFileSync(
    config,
    `providers:\n  fake: { kind: openai, base_url: "${upstream}/v1", api_key: sk-bench }\nroutes:\n  bench: { privacy: allow, targets: [{ provider: fake, model: bench }] }\n`,
  );
  const port = await freePort();
  const child = new Child(
    process.execPath,
    [
      "--import",
      "tsx",
      join(projectRoot, "src/cli/entry.ts"),
      "serve",
      "--port",
      String(port),
      "--no-demo",
      "--config",
      config,
    ],
    { cwd: projectRoot, env: { ...process.env, FREEHOLD_HOME: home, FREEHOLD_LOG_LEVEL: "warn" } },
  );
  await child.waitFor(/listening on/, "freehold");
  return { system: { name: "freehold", url: `http://127.0.0.1:${port}`, headers: {}, model: "bench" }, child };
}

async function startPortkey(upstream: string): Promise<{ system: System; child: Child } | string> {
  const prefix = join(tmpdir(), "freehold-bench", "portkey");
  const entry = join(prefix, "node_modules", "@portkey-ai", "gateway", "build", "start-server.js");
  try {
    if (!existsSync(entry)) {
      log(`installing @portkey-ai/gateway@${PORTKEY_VERSION} into ${prefix}`);
      mkdirSync(prefix, { recursive: true });
      execFileSync(
        "npm",
        ["install", "--prefix", prefix, `@portkey-ai/gateway@${PORTKEY_VERSION}`, "--no-audit", "--no-fund"],
        {
          stdio: "ignore",
          timeout: 300_000,
        },
      );
    }
    const port = await freePort();
    const child = new Child(process.execPath, [entry, `--port=${port}`, "--headless"], {
      env: { ...process.env, NODE_ENV: "production" },
    });
    await child.waitFor(/(listening|running|Ready|started|port)/i, "portkey", 60_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    return {
      system: {
        name: "portkey",
        url: `http://127.0.0.1:${port}`,
        headers: {
          "x-portkey-provider": "openai",
          "x-portkey-custom-host": `${upstream}/v1`,
          authorization: "Bearer sk-bench",
        },
        model: "bench",
      },
      child,
    };
  } catch (error) {
    return `Portkey could not be installed or started (${error instanceof Error ? error.message.split("\n")[0] : String(error)}); measured the rest`;
  }
}

async function once(system: System): Promise<number> {
  const started = performance.now();
  const response = await fetch(`${system.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...system.headers },
    body: JSON.stringify({ model: system.model, messages: [{ role: "user", content: "Say ok." }], max_tokens: 4 }),
  });
  const body = await response.text();
  if (!response.ok) throw new Error(`${system.name} answered ${response.status}: ${body.slice(0, 200)}`);
  return performance.now() - started;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function throughput(system: System): Promise<number> {
  let done = 0;
  const end = performance.now() + THROUGHPUT_MS;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) {
        await once(system);
        done++;
      }
    }),
  );
  return done / (THROUGHPUT_MS / 1000);
}

export interface GatewayResult {
  notes: string[];
  systems: {
    name: string;
    p50Ms: number;
    p99Ms: number;
    addedP50Ms: number | null;
    addedP99Ms: number | null;
    requestsPerSecond: number;
  }[];
}

export async function benchGateway(): Promise<GatewayResult> {
  const upstream = await fakeUpstream();
  const notes: string[] = [];
  const direct: System = { name: "direct", url: upstream.url, headers: {}, model: "bench" };
  const freehold = await startFreehold(upstream.url);
  const portkey = await startPortkey(upstream.url);
  const systems = [direct, freehold.system];
  if (typeof portkey === "string") notes.push(portkey);
  else systems.push(portkey.system);
  try {
    const latencies = new Map(systems.map((system) => [system.name, [] as number[]]));
    const rates = new Map(systems.map((system) => [system.name, [] as number[]]));
    for (const system of systems) for (let i = 0; i < WARMUP; i++) await once(system);
    for (let round = 0; round < ROUNDS; round++) {
      for (const system of systems) {
        log(`round ${round + 1}/${ROUNDS}: ${system.name}, ${SEQUENTIAL / ROUNDS} sequential requests`);
        for (let i = 0; i < SEQUENTIAL / ROUNDS; i++) latencies.get(system.name)!.push(await once(system));
        log(`round ${round + 1}/${ROUNDS}: ${system.name}, ${CONCURRENCY} concurrent for ${THROUGHPUT_MS / 1000} s`);
        rates.get(system.name)!.push(await throughput(system));
      }
    }
    const directP50 = percentile(latencies.get("direct")!, 50);
    const directP99 = percentile(latencies.get("direct")!, 99);
    return {
      notes,
      systems: systems.map((system) => {
        const values = latencies.get(system.name)!;
        const p50 = percentile(values, 50);
        const p99 = percentile(values, 99);
        return {
          name: system.name,
          p50Ms: p50,
          p99Ms: p99,
          addedP50Ms: system === direct ? null : p50 - directP50,
          addedP99Ms: system === direct ? null : p99 - directP99,
          requestsPerSecond: Math.max(...rates.get(system.name)!),
        };
      }),
    };
  } finally {
    await freehold.child.stop();
    if (typeof portkey !== "string") await portkey.child.stop();
    upstream.close();
  }
}

export function formatGateway(result: GatewayResult): string {
  const ms = (value: number | null) => (value === null ? "—" : `${value.toFixed(2)} ms`);
  const lines = [
    "| system | p50 | p99 | added p50 | added p99 | max requests/s (32 concurrent) |",
    "| --- | --- | --- | --- | --- | --- |",
    ...result.systems.map(
      (s) =>
        `| ${s.name} | ${ms(s.p50Ms)} | ${ms(s.p99Ms)} | ${ms(s.addedP50Ms)} | ${ms(s.addedP99Ms)} | ${s.requestsPerSecond.toFixed(0)} |`,
    ),
    ...result.notes.map((note) => `\n${note}`),
  ];
  return lines.join("\n");
}
