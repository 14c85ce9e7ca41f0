// node --import tsx bench/durability.ts [--requests 2000]
//
// What durable commits would cost the control plane: the per-request database work of a keyed request (admission
// reservation, ledger row and settlement, the request's completion, a routing decision in the audit trail) with
// synchronous=NORMAL (what freehold uses) and FULL (each commit fsynced), and one administrative audit entry
// (always durable). Interleaved rounds, so noise from other work on the machine spreads over both.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ControlPlane } from "../src/control/controlPlane.js";
import type { RequestContext } from "../src/core/context.js";

const requests = Number(process.argv[process.argv.indexOf("--requests") + 1] || 2000);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

function summary(times: number[]): string {
  const sorted = [...times].sort((a, b) => a - b);
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  return `mean ${mean.toFixed(3)} ms  p50 ${percentile(sorted, 0.5).toFixed(3)} ms  p99 ${percentile(sorted, 0.99).toFixed(3)} ms`;
}

async function round(mode: "NORMAL" | "FULL", count: number): Promise<number[]> {
  const home = mkdtempSync(join(tmpdir(), "freehold-durability-"));
  const control = new ControlPlane({ home, logLevel: "silent" });
  try {
    const { key } = control.keys.create("bench", { rpm: 1_000_000, dailyTokens: 1_000_000_000 });
    control.db.pragma(`synchronous = ${mode}`);
    const times: number[] = [];
    for (let i = 0; i < count; i++) {
      const context: RequestContext = {
        requestId: `req_${mode}_${i}`,
        api: "openai",
        route: "/v1/chat/completions",
        key: { id: key.id, name: key.name, admin: false, models: null, localOnly: false, storeContent: false },
      };
      const started = performance.now();
      const admission = control.admit({ kind: "generate", promptTokenBound: 100, maxTokens: 50 }, context, {
        provider: "local",
        model: "stories",
        remote: false,
      });
      control.audit.recordSoon({ actor: key.name, action: "route.served", requestId: context.requestId });
      admission.settle({
        promptTokens: 20,
        completionTokens: 10,
        cachedTokens: 0,
        timeToFirstTokenMs: 1,
        status: 200,
      });
      control.completeRequest({
        method: "POST",
        path: "/v1/chat/completions",
        status: 200,
        durationMs: 1,
        requestId: context.requestId,
        api: "openai",
        key: key.name,
        bytes: 100,
      });
      // The batched writes (audit decision, completion) run at the end of the turn, as on the server.
      await new Promise<void>((resolve) => setImmediate(resolve));
      times.push(performance.now() - started);
    }
    return times;
  } finally {
    control.close();
    rmSync(home, { recursive: true, force: true });
  }
}

async function adminRound(count: number): Promise<number[]> {
  const home = mkdtempSync(join(tmpdir(), "freehold-durability-"));
  const control = new ControlPlane({ home, logLevel: "silent" });
  try {
    const times: number[] = [];
    for (let i = 0; i < count; i++) {
      const started = performance.now();
      control.audit.record({ actor: "bench", action: "model.delete", target: `m${i}` });
      times.push(performance.now() - started);
    }
    return times;
  } finally {
    control.close();
    rmSync(home, { recursive: true, force: true });
  }
}

const results: Record<string, number[]> = { NORMAL: [], FULL: [], admin: [] };
const rounds = 4;
for (let r = 0; r < rounds; r++) {
  for (const mode of ["NORMAL", "FULL"] as const) results[mode]!.push(...(await round(mode, requests / rounds)));
  results.admin!.push(...(await adminRound(Math.max(10, requests / rounds / 10))));
}
console.log(`per keyed request, synchronous=NORMAL: ${summary(results.NORMAL!)}`);
console.log(`per keyed request, synchronous=FULL:   ${summary(results.FULL!)}`);
console.log(`one administrative audit entry (durable, with its witness): ${summary(results.admin!)}`);
