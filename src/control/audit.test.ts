import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, test } from "node:test";
import { temporaryDirectory } from "../../test/helpers/paths.js";
import { AuditLog, type AuditVerification } from "./audit.js";
import type { AuditRow } from "./auditChain.js";
import { type AuditKeySource, defaultAuditKeyFile, headLine, parseHeadLine } from "./auditKey.js";
import { type ControlDatabase, controlDatabasePath, openControlDatabase } from "./database.js";
import { KeyStore } from "./keys.js";

/** What a database writer without the audit key can compute: the pre-keying scheme, plain SHA-256 of the fields. */
function plainHash(row: Record<string, unknown>): string {
  const fields = [row.seq, row.time, row.actor, row.action, row.target, row.request_id, row.detail, row.prev_hash];
  return createHash("sha256").update(JSON.stringify(fields)).digest("hex");
}

type Row = AuditRow;

/** A fresh home with a trail of a few administrative entries and two keys (one revoked). */
function setUp(home: string, source: AuditKeySource = { file: defaultAuditKeyFile(home) }) {
  const db = openControlDatabase(home);
  const audit = new AuditLog(db, source);
  const keys = new KeyStore(db, audit);
  keys.create("app", { rpm: 60 }, { actor: "cli:owner", why: "the app" });
  keys.create("old", {}, { actor: "cli:owner" });
  keys.revoke("old", { actor: "cli:owner", why: "rotated" });
  for (let i = 0; i < 4; i++) audit.record({ actor: "cli:owner", action: "model.delete", target: `m${i}` });
  return { db, audit, keys };
}

function rows(db: ControlDatabase): Row[] {
  return db.prepare<[], Row>("SELECT * FROM audit ORDER BY seq").all();
}

/** The attacker's tidy-up after cutting the end: the head row agrees with what is left. */
function fixHeadRow(db: ControlDatabase): void {
  const last = db
    .prepare<[], { seq: number; hash: string }>("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
    .get();
  db.prepare("DELETE FROM audit_head").run();
  if (last) db.prepare("INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?)").run(last.seq, last.hash);
}

function assertCaught(result: AuditVerification, pattern: RegExp): void {
  assert.equal(result.ok, false, "verify must not call this trail intact");
  assert.ok(
    result.problems.some((problem) => pattern.test(problem)),
    `expected a problem matching ${pattern}, got: ${result.problems.join(" | ")}`,
  );
}

describe("the audit trail, attacked by someone who can write the database", () => {
  let home: { path: string; dispose: () => void };
  let db: ControlDatabase;
  let audit: AuditLog;
  let keys: KeyStore;
  beforeEach(() => {
    home = temporaryDirectory("freehold-audit-");
    ({ db, audit, keys } = setUp(home.path));
  });
  afterEach(() => {
    if (db.open) db.close();
    home.dispose();
  });

  test("an untouched trail verifies: keyed from its first entry, key file 0600, witness beside it", () => {
    const result = audit.verify();
    assert.deepEqual(result.problems, []);
    assert.equal(result.ok, true);
    assert.equal(result.keyed, true);
    assert.equal(rows(db)[0]!.action, "audit.keyed");
    const keyFile = defaultAuditKeyFile(home.path);
    if (process.platform !== "win32") assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    assert.match(readFileSync(keyFile, "utf8"), /^[0-9a-f]{64}\n$/);
    const witness = parseHeadLine(readFileSync(audit.witnessFile, "utf8"));
    assert.equal(witness.seq, rows(db).length);
    // The secret is in no entry and no witness.
    const secret = readFileSync(keyFile, "utf8").trim();
    assert.equal(JSON.stringify(rows(db)).includes(secret), false);
    assert.equal(readFileSync(audit.witnessFile, "utf8").includes(secret), false);
    // Administrative commits are durable, and the connection goes back to NORMAL for the per-request ones.
    assert.equal(db.pragma("synchronous", { simple: true }), 1);
  });

  test("deleting the last entry, the last N, or all of them is caught, even with the head row tidied up", () => {
    const total = rows(db).length;
    for (const keep of [total - 1, total - 3, 0]) {
      const backup = rows(db);
      db.prepare("DELETE FROM audit WHERE seq > ?").run(keep);
      fixHeadRow(db);
      assertCaught(
        audit.verify(),
        new RegExp(`the trail ends at entry ${keep} but the witness .* records entry ${total}`),
      );
      // Restore for the next case.
      db.prepare("DELETE FROM audit").run();
      const insert = db.prepare(
        "INSERT INTO audit VALUES (@seq, @time, @actor, @action, @target, @request_id, @detail, @prev_hash, @hash)",
      );
      for (const row of backup) insert.run(row);
      fixHeadRow(db);
      assert.deepEqual(audit.verify().problems, []);
    }
  });

  test("editing an entry, even re-chaining everything after it with SHA-256, is caught as a forgery", () => {
    const all = rows(db);
    const victim = all.find((row) => row.action === "model.delete")!;
    let previous = victim.prev_hash;
    for (const row of all.filter((r) => r.seq >= victim.seq)) {
      const changed = { ...row, prev_hash: previous, ...(row.seq === victim.seq ? { target: "nothing-to-see" } : {}) };
      changed.hash = plainHash(changed);
      db.prepare("UPDATE audit SET target = ?, prev_hash = ?, hash = ? WHERE seq = ?").run(
        changed.target,
        changed.prev_hash,
        changed.hash,
        row.seq,
      );
      previous = changed.hash;
    }
    fixHeadRow(db);
    assertCaught(audit.verify(), new RegExp(`entry ${victim.seq} \\(model.delete\\) was edited .* or forged`));
  });

  test("reordering two entries is caught", () => {
    const all = rows(db);
    const [a, b] = [all[3]!, all[4]!];
    const update = db.prepare(
      "UPDATE audit SET time = @time, actor = @actor, action = @action, target = @target, request_id = @request_id, detail = @detail, prev_hash = @prev_hash, hash = @hash WHERE seq = @seq",
    );
    update.run({ ...b, seq: a.seq });
    update.run({ ...a, seq: b.seq });
    assertCaught(audit.verify(), /does not follow|edited|forged/);
  });

  test("an entry forged with plain SHA-256 and appended (head row updated) is caught", () => {
    const last = rows(db).at(-1)!;
    const forged = {
      seq: last.seq + 1,
      time: new Date().toISOString(),
      actor: "cli:owner",
      action: "key.revoke",
      target: "app",
      request_id: null,
      detail: null,
      prev_hash: last.hash,
      hash: "",
    };
    forged.hash = plainHash(forged);
    db.prepare(
      "INSERT INTO audit VALUES (@seq, @time, @actor, @action, @target, @request_id, @detail, @prev_hash, @hash)",
    ).run(forged);
    fixHeadRow(db);
    assertCaught(audit.verify(), new RegExp(`entry ${forged.seq} \\(key.revoke\\) was edited .* or forged`));
  });

  test("a key whose creation entry is gone, a key added behind freehold's back, or a key changed directly is caught", () => {
    const app = keys.get("app");
    // A key row written straight into the table: no entry at all.
    db.prepare("INSERT INTO keys (id, name, hash, admin, created_at) VALUES ('key_backdoor', 'backdoor', ?, 1, ?)").run(
      "ab".repeat(32),
      new Date().toISOString(),
    );
    assertCaught(audit.verify(), /key backdoor \(key_backdoor\) has no key\.create entry/);
    db.prepare("DELETE FROM keys WHERE id = 'key_backdoor'").run();
    assert.equal(audit.verify().ok, true);
    // Promoted to admin, limits lifted, secret swapped: each named.
    db.prepare("UPDATE keys SET admin = 1, rpm = NULL WHERE id = ?").run(app.id);
    const promoted = audit.verify();
    assertCaught(promoted, /key app .*: admin is true in the database but false in the trail/);
    assertCaught(promoted, /key app .*: rpm is null in the database but 60 in the trail/);
    db.prepare("UPDATE keys SET admin = 0, rpm = 60, hash = ? WHERE id = ?").run("cd".repeat(32), app.id);
    assertCaught(audit.verify(), /key app .* has a different secret/);
    // A revoked key brought back to life in the database.
    db.prepare("UPDATE keys SET revoked_at = NULL WHERE name = 'old'").run();
    assertCaught(audit.verify(), /key old .* was revoked \(entry \d+\) but is active in the database/);
  });

  test("deleting a key's creation or revocation entry (and everything after, to hide the gap) is caught", () => {
    const revocation = rows(db).find((row) => row.action === "key.revoke")!;
    db.prepare("DELETE FROM audit WHERE seq >= ?").run(revocation.seq);
    fixHeadRow(db);
    const result = audit.verify();
    assertCaught(result, /is revoked but has no key\.revoke entry/);
    assertCaught(result, /the witness .* records entry/);
    const creation = rows(db).find((row) => row.action === "key.create" && row.target === "app")!;
    db.prepare("DELETE FROM audit WHERE seq >= ?").run(creation.seq);
    fixHeadRow(db);
    assertCaught(audit.verify(), /key app \(key_\w+\) has no key\.create entry/);
  });

  test("a remote request's ledger row without its routing decision (added directly, or its entry removed) is caught", () => {
    const insertRow = db.prepare(
      "INSERT INTO ledger (request_id, time_ms, api, route, kind, model, provider, duration_ms, status) VALUES (?, ?, 'openai', '/v1/chat/completions', 'generate', ?, ?, 1, ?)",
    );
    // Local rows and refusals at admission have no decision; a routed remote one has its route.served entry.
    insertRow.run("req_local", Date.now(), "stories", "local", 200);
    insertRow.run("req_refused", Date.now(), "gpt-4o", "openai", 429);
    audit.record({ actor: "app", action: "route.served", requestId: "req_routed", target: "openai/gpt-4o" });
    insertRow.run("req_routed", Date.now(), "gpt-4o", "openai", 200);
    assert.deepEqual(audit.verify().problems, []);
    insertRow.run("req_invented", Date.now(), "gpt-4o", "openai", 200);
    assertCaught(audit.verify(), /ledger row req_invented \(openai\/gpt-4o, .*\) has no route\.\* entry/);
  });

  test("replacing the database with an older copy is caught, recorded at the next append, and stays caught", () => {
    db.pragma("wal_checkpoint(TRUNCATE)");
    const copy = join(home.path, "older.db");
    copyFileSync(controlDatabasePath(home.path), copy);
    audit.record({ actor: "cli:owner", action: "model.delete", target: "evidence" });
    db.close();
    for (const suffix of ["-wal", "-shm"]) rmSync(`${controlDatabasePath(home.path)}${suffix}`, { force: true });
    copyFileSync(copy, controlDatabasePath(home.path));
    db = openControlDatabase(home.path);
    audit = new AuditLog(db, { file: defaultAuditKeyFile(home.path) });
    assertCaught(audit.verify(), /the trail ends at entry \d+ but the witness .* records entry \d+ .*older copy/);
    // The server goes on writing: the cut is written into the (keyed) trail before the new entry.
    audit.record({ actor: "cli:owner", action: "model.delete", target: "after" });
    const cut = rows(db).find((row) => row.action === "audit.cut")!;
    assert.ok(cut, "an audit.cut entry records what was found");
    assertCaught(audit.verify(), new RegExp(`entry ${cut.seq} records that the trail was found cut`));
    assert.throws(() => audit.acknowledge(cut.seq - 1, "cli:owner", "x"), /not an audit\.cut entry/);
    assert.throws(() => audit.acknowledge(cut.seq, "cli:owner", "  "), /why/);
    audit.acknowledge(cut.seq, "cli:owner", "restored last night's backup on purpose");
    assert.deepEqual(audit.verify().problems, []);
  });

  test("a deleted or forged witness is caught", () => {
    unlinkSync(audit.witnessFile);
    assertCaught(audit.verify(), /witness .* is missing/);
    const head = audit.exportHead("cli:owner");
    const forged = { ...head, seq: head.seq + 5 };
    writeFileSync(audit.witnessFile, `${headLine(forged)}\n`);
    assertCaught(audit.verify(), /does not carry the audit key's signature/);
    writeFileSync(audit.witnessFile, "garbage\n");
    assertCaught(audit.verify(), /is not a head line/);
  });

  test("a head kept elsewhere catches a cut that also rewrote the witness; a forged or foreign head is refused", () => {
    const head = audit.exportHead("cli:owner");
    const line = headLine(head);
    assert.match(line, /^freehold-audit-head v1 seq=\d+ time=\S+ hash=[0-9a-f]{64} key=[0-9a-f]{16} mac=[0-9a-f]{64}$/);
    assert.deepEqual(audit.verify({ head: parseHeadLine(line) }).problems, []);
    // Someone with the whole home: cuts the end, then lets freehold rewrite the witness by removing it first.
    db.prepare("DELETE FROM audit WHERE seq >= ?").run(head.seq - 2);
    fixHeadRow(db);
    unlinkSync(audit.witnessFile);
    assertCaught(audit.verify({ head: parseHeadLine(line) }), /the head you kept records entry/);
    assert.throws(() => parseHeadLine("seq=3 hash=abc"), /--head must be the whole line/);
    const tampered = line.replace(/seq=\d+/, "seq=1");
    assertCaught(
      audit.verify({ head: parseHeadLine(tampered) }),
      /the head you kept does not carry the audit key's signature/,
    );
  });

  test("the wrong key, a missing key file, and a key file others can read are each named", () => {
    db.close();
    db = openControlDatabase(home.path);
    const other = new AuditLog(db, { file: defaultAuditKeyFile(home.path), secret: "x".repeat(40) });
    assertCaught(other.verify(), /keyed with audit key [0-9a-f]{16} but the configured key is [0-9a-f]{16}/);
    const short = new AuditLog(db, { file: defaultAuditKeyFile(home.path), secret: "too-short-secret" });
    const shortResult = short.verify();
    assertCaught(shortResult, /at least 32/);
    assert.equal(shortResult.problems.join(" ").includes("too-short-secret"), false, "the secret is never repeated");
    if (process.platform !== "win32") {
      chmodSync(defaultAuditKeyFile(home.path), 0o644);
      assertCaught(new AuditLog(db, { file: defaultAuditKeyFile(home.path) }).verify(), /chmod 600/);
      chmodSync(defaultAuditKeyFile(home.path), 0o600);
    }
    unlinkSync(defaultAuditKeyFile(home.path));
    assertCaught(new AuditLog(db, { file: defaultAuditKeyFile(home.path) }).verify(), /no audit key/);
  });
});

describe("a trail written before keying (plain SHA-256)", () => {
  test("keeps verifying, is continued keyed from an audit.keyed entry, and its old entries are fixed from then on", () => {
    const home = temporaryDirectory("freehold-audit-legacy-");
    try {
      const db = openControlDatabase(home.path);
      // What an older freehold wrote: a plain chain and its head row, no key file, no witness.
      let previous = "0".repeat(64);
      const insert = db.prepare(
        "INSERT INTO audit VALUES (@seq, @time, @actor, @action, @target, @request_id, @detail, @prev_hash, @hash)",
      );
      for (let seq = 1; seq <= 3; seq++) {
        const row = {
          seq,
          time: new Date(Date.UTC(2026, 0, seq)).toISOString(),
          actor: "cli:owner",
          action: "model.delete",
          target: `legacy${seq}`,
          request_id: null,
          detail: null,
          prev_hash: previous,
          hash: "",
        };
        row.hash = plainHash(row);
        insert.run(row);
        previous = row.hash;
      }
      db.prepare("INSERT INTO audit_head (id, seq, hash) VALUES (1, 3, ?)").run(previous);
      const source = { file: defaultAuditKeyFile(home.path) };
      const audit = new AuditLog(db, source);
      const before = audit.verify();
      assert.deepEqual(before.problems, []);
      assert.equal(before.keyed, false);
      assert.equal(existsSync(source.file), false, "verifying creates no key");
      audit.record({ actor: "cli:owner", action: "model.delete", target: "new" });
      const all = rows(db);
      assert.equal(all[3]!.action, "audit.keyed");
      assert.deepEqual(JSON.parse(all[3]!.detail!).plainEntries, 3);
      assert.equal(JSON.parse(all[3]!.detail!).plainChain, "intact");
      const after = audit.verify();
      assert.deepEqual(after.problems, []);
      assert.equal(after.keyed, true);
      // Rewriting the plain part consistently (SHA-256 all the way to the anchor) no longer passes.
      db.prepare("UPDATE audit SET target = 'rewritten' WHERE seq = 1").run();
      let prev = "0".repeat(64);
      for (const row of rows(db).filter((r) => r.seq <= 3)) {
        const changed = { ...row, prev_hash: prev };
        changed.hash = plainHash(changed);
        db.prepare("UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?").run(
          changed.prev_hash,
          changed.hash,
          row.seq,
        );
        prev = changed.hash;
      }
      assertCaught(audit.verify(), /entry 4 does not follow entry 3/);
      // Stripping the keyed part to make it look like an old, unkeyed trail is caught by the witness.
      db.prepare("DELETE FROM audit WHERE seq >= 4").run();
      fixHeadRow(db);
      assertCaught(new AuditLog(db, source).verify(), /the trail ends at entry 3 but the witness .* records entry 5/);
      db.close();
    } finally {
      home.dispose();
    }
  });
});
