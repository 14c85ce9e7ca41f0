import type postgres from "postgres";
import type { ControlDatabase } from "./database.js";

/**
 * Evaluation runs as the control store keeps them (migration 2, on both engines). The JSON columns stay text here:
 * src/eval/store.ts owns their shapes, and the control plane (a lower layer) does not import eval's types.
 */
export interface EvalRunRow {
  id: string;
  identity: string;
  suite_name: string;
  /** The resolved suite, JSON. */
  suite: string;
  /** The model names, a JSON array. */
  models: string;
  baseline: string | null;
  repeat: number;
  created_ms: number;
  finished_ms: number | null;
}

export interface EvalResultRow {
  run_id: string;
  model: string;
  case_id: string;
  repeat: number;
  output: string;
  error: string | null;
  pass: 0 | 1;
  /** JSON array of assertion results. */
  assertions: string;
  prompt_tokens: number;
  completion_tokens: number;
  ttft_ms: number | null;
  duration_ms: number;
  cost_usd: number | null;
  /** JSON, or null when nothing answered. */
  served_by: string | null;
  time_ms: number;
}

export interface EvalRunSummaryRow {
  id: string;
  suite_name: string;
  models: string;
  baseline: string | null;
  created_ms: number;
  finished_ms: number | null;
  results: number;
}

/** A stored request and its answer (keys with store_content), what `eval --from-ledger` replays. */
export interface StoredContentRow {
  request_id: string;
  time_ms: number;
  request: string;
  response: string;
}

/**
 * The evaluation-run part of the control store's port (ControlStore.evals). Each call is one statement, committed
 * when it resolves, so a run killed at any point continues from what was stored, on either engine.
 */
export interface EvalRows {
  /** The newest unfinished run with this identity. */
  unfinished(identity: string): Promise<EvalRunRow | undefined>;
  create(row: EvalRunRow): Promise<void>;
  get(id: string): Promise<EvalRunRow | undefined>;
  finish(id: string, now: number): Promise<void>;
  /** Inserts or replaces the answer for (run, model, case, repeat). */
  save(row: EvalResultRow): Promise<void>;
  /** A run's answers ordered by model, case and repeat (byte order on both engines, so summaries are identical). */
  results(runId: string): Promise<EvalResultRow[]>;
  reference(runId: string, model: string, caseId: string): Promise<string | undefined>;
  saveReference(runId: string, model: string, caseId: string, output: string): Promise<void>;
  /** The newest runs with their answer counts. */
  list(limit: number): Promise<EvalRunSummaryRow[]>;
  /** Stored content since `sinceMs`, oldest first. */
  content(sinceMs: number): Promise<StoredContentRow[]>;
}

const resultColumns =
  "run_id, model, case_id, repeat, output, error, pass, assertions, prompt_tokens, completion_tokens, ttft_ms, duration_ms, cost_usd, served_by, time_ms";

function resultValues(row: EvalResultRow) {
  return [
    row.run_id,
    row.model,
    row.case_id,
    row.repeat,
    row.output,
    row.error,
    row.pass,
    row.assertions,
    row.prompt_tokens,
    row.completion_tokens,
    row.ttft_ms,
    row.duration_ms,
    row.cost_usd,
    row.served_by,
    row.time_ms,
  ] as const;
}

/** Evaluation runs in `$FREEHOLD_HOME/freehold.db` (synchronous; the promise only carries the answer). */
export class SqliteEvalRows implements EvalRows {
  constructor(private readonly db: ControlDatabase) {}

  async unfinished(identity: string) {
    return this.db
      .prepare<[string], EvalRunRow>(
        "SELECT * FROM eval_runs WHERE identity = ? AND finished_ms IS NULL ORDER BY created_ms DESC LIMIT 1",
      )
      .get(identity);
  }

  async create(row: EvalRunRow) {
    this.db
      .prepare(
        "INSERT INTO eval_runs (id, identity, suite_name, suite, models, baseline, repeat, created_ms, finished_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
      )
      .run(
        row.id,
        row.identity,
        row.suite_name,
        row.suite,
        row.models,
        row.baseline,
        row.repeat,
        row.created_ms,
        row.finished_ms,
      );
  }

  async get(id: string) {
    return this.db.prepare<[string], EvalRunRow>("SELECT * FROM eval_runs WHERE id = ?").get(id);
  }

  async finish(id: string, now: number) {
    this.db.prepare("UPDATE eval_runs SET finished_ms = ? WHERE id = ?").run(now, id);
  }

  async save(row: EvalResultRow) {
    this.db
      .prepare(
        `INSERT OR REPLACE INTO eval_results (${resultColumns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(...resultValues(row));
  }

  async results(runId: string) {
    return this.db
      .prepare<[string], EvalResultRow>("SELECT * FROM eval_results WHERE run_id = ? ORDER BY model, case_id, repeat")
      .all(runId);
  }

  async reference(runId: string, model: string, caseId: string) {
    return this.db
      .prepare<[string, string, string], { output: string }>(
        "SELECT output FROM eval_references WHERE run_id = ? AND model = ? AND case_id = ?",
      )
      .get(runId, model, caseId)?.output;
  }

  async saveReference(runId: string, model: string, caseId: string, output: string) {
    this.db
      .prepare("INSERT OR REPLACE INTO eval_references (run_id, model, case_id, output) VALUES (?, ?, ?, ?)")
      .run(runId, model, caseId, output);
  }

  async list(limit: number) {
    return this.db
      .prepare<[number], EvalRunSummaryRow>(
        `SELECT r.id, r.suite_name, r.models, r.baseline, r.created_ms, r.finished_ms,
         (SELECT COUNT(*) FROM eval_results e WHERE e.run_id = r.id) AS results
         FROM eval_runs r ORDER BY r.created_ms DESC, r.id LIMIT ?`,
      )
      .all(limit);
  }

  async content(sinceMs: number) {
    return this.db
      .prepare<[number], StoredContentRow>(
        "SELECT request_id, time_ms, request, response FROM content WHERE time_ms >= ? ORDER BY time_ms, request_id",
      )
      .all(sinceMs);
  }
}

type Sql = postgres.Sql<Record<string, never>>;

/**
 * Evaluation runs in the shared PostgreSQL database: runs started from any machine are listed on every replica's
 * console. `run` turns an unreachable database into the store's 503. Text is ordered with the "C" collation, as
 * SQLite orders it (bytes), whatever locale the database was created with.
 */
export class PostgresEvalRows implements EvalRows {
  constructor(
    private readonly sql: Sql,
    private readonly run: <T>(work: () => Promise<T>) => Promise<T>,
  ) {}

  async unfinished(identity: string) {
    const [row] = await this.run(
      () => this.sql<EvalRunRow[]>`SELECT * FROM eval_runs WHERE identity = ${identity} AND finished_ms IS NULL
        ORDER BY created_ms DESC LIMIT 1`,
    );
    return row;
  }

  async create(row: EvalRunRow) {
    await this.run(
      () =>
        this.sql`INSERT INTO eval_runs ${this.sql(row as unknown as Record<string, postgres.SerializableParameter>)}`,
    );
  }

  async get(id: string) {
    const [row] = await this.run(() => this.sql<EvalRunRow[]>`SELECT * FROM eval_runs WHERE id = ${id}`);
    return row;
  }

  async finish(id: string, now: number) {
    await this.run(() => this.sql`UPDATE eval_runs SET finished_ms = ${now} WHERE id = ${id}`);
  }

  async save(row: EvalResultRow) {
    await this.run(
      () => this
        .sql`INSERT INTO eval_results ${this.sql(row as unknown as Record<string, postgres.SerializableParameter>)}
        ON CONFLICT (run_id, model, case_id, repeat) DO UPDATE SET output = excluded.output, error = excluded.error,
          pass = excluded.pass, assertions = excluded.assertions, prompt_tokens = excluded.prompt_tokens,
          completion_tokens = excluded.completion_tokens, ttft_ms = excluded.ttft_ms,
          duration_ms = excluded.duration_ms, cost_usd = excluded.cost_usd, served_by = excluded.served_by,
          time_ms = excluded.time_ms`,
    );
  }

  async results(runId: string) {
    return this.run(
      () => this.sql<EvalResultRow[]>`SELECT * FROM eval_results WHERE run_id = ${runId}
        ORDER BY model COLLATE "C", case_id COLLATE "C", repeat`,
    );
  }

  async reference(runId: string, model: string, caseId: string) {
    const [row] = await this.run(
      () => this.sql<{ output: string }[]>`SELECT output FROM eval_references WHERE run_id = ${runId}
        AND model = ${model} AND case_id = ${caseId}`,
    );
    return row?.output;
  }

  async saveReference(runId: string, model: string, caseId: string, output: string) {
    await this.run(
      () => this.sql`INSERT INTO eval_references (run_id, model, case_id, output)
        VALUES (${runId}, ${model}, ${caseId}, ${output})
        ON CONFLICT (run_id, model, case_id) DO UPDATE SET output = excluded.output`,
    );
  }

  async list(limit: number) {
    return this.run(
      () => this.sql<EvalRunSummaryRow[]>`SELECT r.id, r.suite_name, r.models, r.baseline, r.created_ms, r.finished_ms,
        (SELECT COUNT(*)::float8 FROM eval_results e WHERE e.run_id = r.id) AS results
        FROM eval_runs r ORDER BY r.created_ms DESC, r.id COLLATE "C" LIMIT ${limit}`,
    );
  }

  async content(sinceMs: number) {
    return this.run(
      () => this.sql<StoredContentRow[]>`SELECT request_id, time_ms, request, response FROM content
        WHERE time_ms >= ${sinceMs} ORDER BY time_ms, request_id COLLATE "C"`,
    );
  }
}
