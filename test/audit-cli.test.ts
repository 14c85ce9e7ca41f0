import assert from "node:assert/strict";
import { unlinkSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import Database from "better-sqlite3";
import { runCli } from "./helpers/cli.js";
import { temporaryDirectory } from "./helpers/paths.js";

const directory = temporaryDirectory("freehold-audit-cli-");
after(directory.dispose);

describe("freehold audit head / verify --head", () => {
  test("the owner exports the head, and verify against it catches a cut that also removed the witness", async () => {
    const home = directory.path;
    const cli = (...args: string[]) => runCli(["--home", home, ...args]);
    const created = await cli("keys", "create", "--name", "app", "--why", "the app");
    assert.equal(created.code, 0, created.stderr);
    const head = await cli("audit", "head");
    assert.equal(head.code, 0, head.stderr);
    const line = head.stdout.trim();
    assert.match(line, /^freehold-audit-head v1 seq=\d+ time=\S+ hash=[0-9a-f]{64} key=[0-9a-f]{16} mac=[0-9a-f]{64}$/);
    const json = await cli("audit", "head", "--format", "json");
    const exported = JSON.parse(json.stdout) as { seq: number; hash: string; line: string };
    assert.equal(exported.line.startsWith("freehold-audit-head v1 "), true);

    const intact = await cli("audit", "verify", "--head", line, "--format", "json");
    assert.equal(intact.code, 0, intact.stdout + intact.stderr);
    assert.deepEqual((JSON.parse(intact.stdout) as { ok: boolean; problems: string[] }).problems, []);

    // Someone with the home directory: drops the newest entries, tidies the head row, removes the witness.
    const db = new Database(join(home, "freehold.db"));
    db.prepare("DELETE FROM audit WHERE seq >= ?").run(exported.seq - 1);
    const last = db.prepare("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").get() as {
      seq: number;
      hash: string;
    };
    db.prepare("UPDATE audit_head SET seq = ?, hash = ?").run(last.seq, last.hash);
    db.close();
    unlinkSync(join(home, "audit.key.head"));

    const cut = await cli("audit", "verify", "--head", line);
    assert.equal(cut.code, 1);
    assert.match(cut.stdout, /NOT intact/);
    assert.match(cut.stdout, /the head you kept records entry/);
    const cutJson = await cli("audit", "verify", "--head", line, "--format", "json");
    assert.equal(cutJson.code, 1);
    const result = JSON.parse(cutJson.stdout) as { ok: boolean; problem: string; problems: string[] };
    assert.equal(result.ok, false);
    assert.ok(result.problems.some((problem) => /the head you kept records entry/.test(problem)));

    const garbled = await cli("audit", "verify", "--head", "seq=3");
    assert.notEqual(garbled.code, 0);
    assert.match(garbled.stderr, /--head must be the whole line/);
  });
});
