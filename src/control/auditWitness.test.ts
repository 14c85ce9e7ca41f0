import assert from "node:assert/strict";
import { chmodSync, readdirSync, readFileSync, statSync, watch } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { temporaryDirectory } from "../../test/helpers/paths.js";
import { AuditLog } from "./audit.js";
import type { AuditRow } from "./auditChain.js";
import { AuditKey, defaultAuditKeyFile, makeHead, parseHeadLine, WitnessWriter } from "./auditKey.js";
import { ControlPlane } from "./controlPlane.js";
import { type ControlDatabase, openControlDatabase } from "./database.js";
import { SqliteStore } from "./sqliteStore.js";

/** The witness beside the audit key (written off the event loop, waited for on close) and an unusable key. */

function rows(db: ControlDatabase): AuditRow[] {
  return db.prepare<[], AuditRow>("SELECT * FROM audit ORDER BY seq").all();
}

describe("the witness, written off the event loop for per-request entries", () => {
  test("it converges on the newest head: batches write it soon, administrative entries at once, close settles it", async () => {
    const home = temporaryDirectory("freehold-audit-witness-");
    try {
      const db = openControlDatabase(home.path);
      const audit = new AuditLog(db, { file: defaultAuditKeyFile(home.path) });
      for (let i = 0; i < 50; i++) {
        audit.recordSoon({ actor: "app", action: "route.served", requestId: `req_${i}` });
        if (i === 25) audit.record({ actor: "cli:owner", action: "model.delete", target: "m" });
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      assert.deepEqual(audit.verify().problems, [], "a witness still on its way never reads as a cut");
      audit.close();
      const last = db
        .prepare<[], { seq: number; hash: string }>("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        .get()!;
      const witness = parseHeadLine(readFileSync(audit.witnessFile, "utf8"));
      assert.deepEqual([witness.seq, witness.hash], [last.seq, last.hash]);
      assert.equal(rows(db).filter((row) => row.action === "audit.cut").length, 0);
      db.close();
    } finally {
      home.dispose();
    }
  });

  test("an older write landing after a newer one is followed by the newest again", async () => {
    const home = temporaryDirectory("freehold-audit-witness-");
    try {
      const key = new AuditKey(Buffer.from("k".repeat(40)));
      const path = join(home.path, "audit.key.head");
      const writer = new WitnessWriter(path);
      const head = (seq: number) =>
        makeHead(key, { seq, hash: String(seq % 10).repeat(64), time: "2026-11-30T00:00:00.000Z" });
      writer.soon(head(1));
      writer.now(head(2));
      // The older write is still in flight after the newer one landed (pending is already false): wait for it, as
      // close does, then the file must hold the newest head (and nothing is left writing into the folder).
      await writer.idle();
      assert.equal(parseHeadLine(readFileSync(path, "utf8")).seq, 2);
      assert.equal(writer.pending, false);
    } finally {
      home.dispose();
    }
  });
});

describe("closing while a witness write is in flight", () => {
  test("the store's close waits for it: nothing is written in the home after close returns", async () => {
    const home = temporaryDirectory("freehold-audit-close-");
    try {
      const store = new SqliteStore(home.path);
      // Per-request batches: their witness is written off the event loop, so a write is in flight when close starts.
      const time = new Date().toISOString();
      for (let i = 0; i < 5; i++) {
        void store.appendAudit([{ event: { actor: "app", action: "route.served", requestId: `r${i}` }, time }], false);
      }
      await store.close();
      const changes: string[] = [];
      const watcher = watch(home.path, (event, name) => changes.push(`${event} ${name}`));
      try {
        await new Promise((resolve) => setTimeout(resolve, 150));
      } finally {
        watcher.close();
      }
      assert.deepEqual(changes, [], "a test (or a program) removing the home after close must not race a late write");
      assert.deepEqual(
        readdirSync(home.path).filter((name) => name.endsWith(".tmp")),
        [],
        "no temporary witness left behind",
      );
    } finally {
      home.dispose();
    }
  });
});

describe("a control plane with an unusable audit key", () => {
  test("refuses to open, saying how to fix it, and never repeats the secret", async () => {
    const home = temporaryDirectory("freehold-audit-badkey-");
    try {
      assert.throws(
        () =>
          new ControlPlane({
            home: home.path,
            logLevel: "silent",
            audit: { file: join(home.path, "k"), secret: "short-secret-value" },
          }),
        (error: Error) => /at least 32/.test(error.message) && !error.message.includes("short-secret-value"),
      );
      if (process.platform !== "win32") {
        const file = join(home.path, "nested", "dir", "audit.key");
        const plane = new ControlPlane({ home: home.path, logLevel: "silent", audit: { file } });
        await plane.audit.record({ actor: "test", action: "model.delete", target: "m" });
        await plane.close();
        assert.equal(statSync(file).mode & 0o777, 0o600, "created, with its directory, on first use");
        chmodSync(file, 0o640);
        assert.throws(() => new ControlPlane({ home: home.path, logLevel: "silent", audit: { file } }), /chmod 600/);
      }
    } finally {
      home.dispose();
    }
  });
});
