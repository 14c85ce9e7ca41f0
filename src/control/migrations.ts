import type Database from "better-sqlite3";

/**
 * The control database's schema, one entry per version. A database at version N runs entries N+1.. in order, each
 * in its own transaction, and records the version in `PRAGMA user_version`. Never edit a shipped entry: add one.
 */
export const migrations: readonly string[] = [
  // 1: keys, quota state, the usage ledger, the audit chain, stored content.
  `
  CREATE TABLE keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    admin INTEGER NOT NULL DEFAULT 0,
    models TEXT,
    rpm INTEGER,
    tpm INTEGER,
    max_concurrent INTEGER,
    daily_tokens INTEGER,
    monthly_tokens INTEGER,
    budget_usd REAL,
    local_only INTEGER NOT NULL DEFAULT 0,
    store_content INTEGER NOT NULL DEFAULT 0,
    content_retention_days INTEGER,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT
  );
  CREATE UNIQUE INDEX keys_active_name ON keys(name) WHERE revoked_at IS NULL;
  CREATE TABLE buckets (
    key_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    level REAL NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (key_id, kind)
  );
  CREATE TABLE reservations (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    tokens INTEGER NOT NULL,
    usd REAL NOT NULL,
    pid INTEGER NOT NULL,
    created_ms INTEGER NOT NULL
  );
  CREATE INDEX reservations_key ON reservations(key_id);
  CREATE TABLE usage_totals (
    key_id TEXT NOT NULL,
    period TEXT NOT NULL,
    tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, period)
  );
  CREATE TABLE ledger (
    id INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL UNIQUE,
    time_ms INTEGER NOT NULL,
    key_id TEXT,
    key_name TEXT,
    api TEXT NOT NULL,
    route TEXT NOT NULL,
    kind TEXT NOT NULL,
    model TEXT NOT NULL,
    provider TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    ttft_ms REAL,
    duration_ms REAL NOT NULL,
    status INTEGER NOT NULL,
    error_code TEXT,
    bytes INTEGER,
    cost_usd REAL NOT NULL DEFAULT 0,
    local_cost_usd REAL NOT NULL DEFAULT 0,
    equivalent_usd REAL NOT NULL DEFAULT 0,
    equivalent_model TEXT
  );
  CREATE INDEX ledger_time ON ledger(time_ms);
  CREATE INDEX ledger_key_time ON ledger(key_id, time_ms);
  CREATE TABLE audit (
    seq INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    request_id TEXT,
    detail TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
  );
  CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
  );
  CREATE TABLE content (
    request_id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    expires_ms INTEGER,
    request TEXT NOT NULL,
    response TEXT NOT NULL
  );
  CREATE INDEX content_expires ON content(expires_ms);
  `,
  // 2: evaluation runs (freehold eval): one row per run, one per answer scored, reference answers for agrees-with.
  `
  CREATE TABLE eval_runs (
    id TEXT PRIMARY KEY,
    identity TEXT NOT NULL,
    suite_name TEXT NOT NULL,
    suite TEXT NOT NULL,
    models TEXT NOT NULL,
    baseline TEXT,
    repeat INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    finished_ms INTEGER
  );
  CREATE INDEX eval_runs_identity ON eval_runs(identity);
  CREATE TABLE eval_results (
    run_id TEXT NOT NULL REFERENCES eval_runs(id),
    model TEXT NOT NULL,
    case_id TEXT NOT NULL,
    repeat INTEGER NOT NULL,
    output TEXT NOT NULL,
    error TEXT,
    pass INTEGER NOT NULL,
    assertions TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    ttft_ms REAL,
    duration_ms REAL NOT NULL,
    cost_usd REAL,
    served_by TEXT,
    time_ms INTEGER NOT NULL,
    PRIMARY KEY (run_id, model, case_id, repeat)
  );
  CREATE TABLE eval_references (
    run_id TEXT NOT NULL REFERENCES eval_runs(id),
    model TEXT NOT NULL,
    case_id TEXT NOT NULL,
    output TEXT NOT NULL,
    PRIMARY KEY (run_id, model, case_id)
  );
  `,
  // 3: a request's audit entries by id (freehold explain after a restart) without scanning the whole trail.
  `
  CREATE INDEX audit_request ON audit(request_id);
  `,
  // 4: reservations belong to one start of a process (a random id, since a restart can get the same pid) and hold
  // a lease that start renews; rows from before have neither and are swept as expired.
  `
  ALTER TABLE reservations ADD COLUMN instance TEXT NOT NULL DEFAULT '';
  ALTER TABLE reservations ADD COLUMN lease_until_ms INTEGER NOT NULL DEFAULT 0;
  `,
];

/** Brings the database to the newest schema. Refuses a database written by a newer freehold. */
export function migrate(db: Database.Database): void {
  const current = db.pragma("user_version", { simple: true }) as number;
  if (current > migrations.length) {
    throw new Error(
      `the control database is at schema version ${current}, newer than this freehold knows (${migrations.length}); upgrade freehold`,
    );
  }
  for (let version = current + 1; version <= migrations.length; version++) {
    db.transaction(() => {
      db.exec(migrations[version - 1]!);
      db.pragma(`user_version = ${version}`);
    }).immediate();
  }
}
