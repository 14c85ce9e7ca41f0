import assert from "node:assert/strict";
import { copyFileSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { connect, createServer, type Socket } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type postgres from "postgres";
import { runCli } from "./helpers/cli.js";
import type { FakeUpstream } from "./helpers/fakeUpstream.js";
import { askReplica, fleetAuditKey, startFleetDatabase, stopFleet } from "./helpers/fleet.js";
import { storiesModelMissing, storiesModelPath, temporaryDirectory } from "./helpers/paths.js";
import { postgresMissing, type TestPostgres } from "./helpers/postgres.js";
import { type ServerProcess, startServerProcess } from "./helpers/server.js";

/**
 * The load balancer of deploy/compose.yaml, in miniature: a round-robin TCP proxy over the replicas. A backend that
 * refuses the connection (a killed replica) is skipped for the next one, as HAProxy's failed health check would take
 * it out of the pool; a connection already piped to a replica that dies is cut, as it is behind HAProxy.
 */
async function startBalancer(backends: string[]) {
  const counts = backends.map(() => 0);
  const sockets = new Set<Socket>();
  let next = 0;
  const server = createServer((client) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => {});
    client.pause();
    const attempt = (tried: number) => {
      if (tried >= backends.length) return void client.destroy();
      const index = next++ % backends.length;
      const { hostname, port } = new URL(backends[index]!);
      const upstream = connect(Number(port), hostname);
      let connected = false;
      upstream.on("error", () => {
        if (!connected) attempt(tried + 1);
      });
      upstream.on("close", () => {
        sockets.delete(upstream);
        if (connected) client.destroy();
      });
      upstream.once("connect", () => {
        connected = true;
        counts[index]!++;
        sockets.add(upstream);
        client.on("close", () => upstream.destroy());
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
    };
    attempt(0);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    counts,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** One request on a new connection (no keep-alive), so a TCP balancer spreads consecutive requests. */
function post(
  url: string,
  key: string,
  body: unknown,
): Promise<{ status: number; requestId: string | undefined; text: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      `${url}/v1/chat/completions`,
      {
        method: "POST",
        agent: false,
        headers: { "content-type": "application/json", authorization: `Bearer ${key}`, connection: "close" },
      },
      (response) => {
        let text = "";
        response.setEncoding("utf8");
        response.on("data", (chunk) => {
          text += chunk;
        });
        response.on("end", () =>
          resolve({ status: response.statusCode ?? 0, requestId: response.headers["x-request-id"] as string, text }),
        );
        response.on("error", reject);
      },
    );
    request.on("error", reject);
    request.end(JSON.stringify(body));
  });
}

describe("a fleet on one PostgreSQL: per-replica reload, peer routes, revocation, a balancer", {
  skip: postgresMissing,
}, () => {
  const directory = temporaryDirectory("freehold-replicas-");
  let database: TestPostgres;
  let url: string;
  let cloud: FakeUpstream;
  let sql: postgres.Sql;
  const replicas: ServerProcess[] = [];
  const config = join(directory.path, "freehold.yaml");
  const configB = join(directory.path, "freehold-b.yaml");
  const auditKey = fleetAuditKey;

  before(async () => {
    ({ database, url, sql, cloud } = await startFleetDatabase(config));
    // Replica B has a configuration file of its own, so a SIGHUP there reloads only B's.
    copyFileSync(config, configB);
    // Replicas share the audit key (each has its own home, so its own witness): one chain, one key. Replica A holds
    // a local model (stories260K) that B does not.
    replicas.push(
      await startServerProcess({
        args: ["--config", config],
        // The URL for the model import too, so its audit entry joins the shared trail (a SQLite trail beside it,
        // under the same key and witness, would read as a cut one).
        env: { FREEHOLD_AUDIT_KEY: auditKey, FREEHOLD_DATABASE_URL: url },
        ...(storiesModelMissing ? {} : { models: { stories: storiesModelPath } }),
      }),
    );
    replicas.push(await startReplicaB());
  });
  const startReplicaB = () =>
    startServerProcess({ args: ["--config", configB], env: { FREEHOLD_AUDIT_KEY: auditKey } });
  after(async () => {
    await stopFleet(replicas, { sql, cloud, database });
    directory.dispose();
  });

  const cli = (args: string[]) =>
    runCli(["--config", config, ...args], { env: { FREEHOLD_HOME: directory.path, FREEHOLD_AUDIT_KEY: auditKey } });
  const ask = askReplica;
  const newKey = async (args: string[]) => {
    const created = await cli(["keys", "create", ...args]);
    assert.equal(created.code, 0, created.stderr);
    return created.stdout.trim();
  };

  test("a replica reloads its own configuration on SIGHUP and reaches a model the other replica holds through a provider route; keys and shared limits are as before", {
    skip: storiesModelMissing,
  }, async () => {
    const [a, b] = replicas as [ServerProcess, ServerProcess];
    const peer = await newKey(["--name", "peer"]);
    const probe = await newKey(["--name", "probe"]);
    const limited = await newKey(["--name", "limited", "--rpm", "3"]);
    // Before B's reload neither replica knows the route.
    for (const replica of [a, b]) assert.equal((await ask(replica, probe, "via-a")).status, 404);
    writeFileSync(
      configB,
      [
        `database: { url: "${url}" }`,
        "providers:",
        `  cloud: { kind: openai, base_url: "${cloud.openaiBase}", api_key: sk-replica-test-000000000000 }`,
        // The other replica, as any OpenAI-compatible provider, with a freehold key of its own.
        `  replica-a: { kind: openai, base_url: "${a.url}/v1", api_key: ${peer} }`,
        "routes:",
        "  paid: { privacy: allow, targets: [{ provider: cloud, model: gpt-4o }] }",
        "  via-a: { privacy: allow, targets: [{ provider: replica-a, model: stories }] }",
        "",
      ].join("\n"),
    );
    b.child.kill("SIGHUP");
    const deadline = Date.now() + 30_000;
    while (!b.output().includes("SIGHUP: reloaded") && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50));
    assert.match(b.output(), /SIGHUP: reloaded the configuration/);
    const answered = await ask(b, probe, "via-a");
    const body = await answered.text();
    assert.equal(answered.status, 200, body);
    assert.ok(
      (JSON.parse(body) as { choices: { message: { content: string } }[] }).choices[0]!.message.content.length > 0,
    );
    // A was not reloaded: its routes are its own file's.
    assert.equal((await ask(a, probe, "via-a")).status, 404);
    // One request, two ledger rows in the one database: B's (to the provider replica-a) and A's (local, B's key).
    const rows = await sql<{ key_name: string; provider: string; model: string; status: number }[]>`SELECT key_name,
        provider, model, status FROM ledger WHERE key_name IN ('peer', 'probe') AND model = 'stories' ORDER BY id`;
    assert.deepEqual(rows.map((row) => [row.key_name, row.provider, row.status]).sort(), [
      ["peer", "local", 200],
      ["probe", "replica-a", 200],
    ]);
    const [reload] = await sql<{ target: string }[]>`SELECT target FROM audit WHERE action = 'config.reload'
        ORDER BY seq DESC LIMIT 1`;
    assert.equal(reload?.target, configB);
    // The reload changed routes only: a key made before it works on B, and its per-minute limit (3) is still one
    // count shared by both replicas.
    const statuses: number[] = [];
    for (const replica of [a, b, b, b, a]) statuses.push((await ask(replica, limited)).status);
    assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
  });

  test("a key revoked through one replica's admin API is refused by the other on its next request", async () => {
    const [a, b] = replicas as [ServerProcess, ServerProcess];
    const admin = await newKey(["--name", "ops", "--admin"]);
    const headers = { "content-type": "application/json", authorization: `Bearer ${admin}` };
    const created = await fetch(`${a.url}/admin/keys`, {
      method: "POST",
      headers,
      body: JSON.stringify({ name: "short-lived" }),
    });
    assert.equal(created.status, 201);
    const { secret } = (await created.json()) as { secret: string };
    assert.equal((await ask(b, secret)).status, 200);
    const revoked = await fetch(`${a.url}/admin/keys/short-lived/revoke`, {
      method: "POST",
      headers,
      body: JSON.stringify({ why: "leaked" }),
    });
    assert.equal(revoked.status, 200, await revoked.clone().text());
    // The bound in docs/deploy.md: the other replica's next request is refused (nothing about keys is cached).
    const refused = await ask(b, secret);
    assert.equal(refused.status, 401);
    assert.match(await refused.text(), /revoked/);
  });

  test("behind a round-robin balancer two replicas serve as one; one killed -9 behind it, the other answers the rest, all in the ledger", async () => {
    const [a, b] = replicas as [ServerProcess, ServerProcess];
    const balancer = await startBalancer([a.url, b.url]);
    try {
      const key = await newKey(["--name", "balanced"]);
      const body = { model: "paid", messages: [{ role: "user", content: "Say hello" }], max_tokens: 20 };
      const first = await Promise.all(Array.from({ length: 6 }, () => post(balancer.url, key, body)));
      assert.deepEqual(
        first.map((answer) => answer.status),
        [200, 200, 200, 200, 200, 200],
      );
      assert.deepEqual(balancer.counts, [3, 3], "round robin over both replicas");
      // B dies with requests in flight; clients whose connection was on B see it cut (as behind HAProxy).
      const sent = cloud.received.length;
      const burst = Promise.allSettled(Array.from({ length: 6 }, () => post(balancer.url, key, body)));
      const deadline = Date.now() + 30_000;
      while (cloud.received.length < sent + 2 && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 20));
      b.child.kill("SIGKILL");
      await new Promise((resolve) => b.child.once("exit", resolve));
      const during = (await burst).flatMap((result) =>
        result.status === "fulfilled" && result.value.status === 200 ? [result.value] : [],
      );
      // After: every request reaches the surviving replica (the dead one refuses connections and is skipped).
      const afterKill: Awaited<ReturnType<typeof post>>[] = [];
      for (let i = 0; i < 4; i++) afterKill.push(await post(balancer.url, key, body));
      assert.deepEqual(
        afterKill.map((answer) => answer.status),
        [200, 200, 200, 200],
      );
      const answered = [...first, ...during, ...afterKill];
      const rows = await sql<{ request_id: string; status: number }[]>`SELECT request_id, status FROM ledger
        WHERE key_name = 'balanced'`;
      const byId = new Map(rows.map((row) => [row.request_id, row.status]));
      for (const answer of answered) assert.equal(byId.get(answer.requestId!), 200, answer.requestId!);
      assert.ok(answered.length >= 10);
    } finally {
      await balancer.close();
    }
    const verified = await cli(["audit", "verify"]);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  });
});
