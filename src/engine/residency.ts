import { FreeholdError, OverloadedError } from "../core/errors.js";
import { formatMemory, type MemoryEstimate } from "./memory.js";

/** A loaded (or loading) model as residency sees it. */
export interface Resident {
  name: string;
  /** Estimated bytes it takes. */
  memory: number;
  /** Something runs, waits or loads on it: it cannot be evicted now. */
  busy: boolean;
  lastUsed: number;
}

export interface ResidencyOptions {
  /** Bytes all loaded models may take together; 0 = 90% of the machine's memory. */
  memoryBudget: number;
  totalMemory: () => number;
  /** Free system memory now. */
  freeMemory: () => number;
  /** Sequences per model (for the message). */
  sequences: number;
}

/** What is loading and why, for the messages. */
export interface Candidate {
  name: string;
  estimate: MemoryEstimate;
  /** The setting a user lowers to need less: `num_ctx` when a request asked for it, else `--context-size`. */
  contextSetting: string;
}

/**
 * Which models stay in memory: before a load, the model's estimate is checked against the budget and what the machine
 * has free, and least-recently-used idle models are chosen for unloading until it fits. A model that cannot fit even
 * alone is refused before anything is allocated, never left for the OS to kill.
 */
export class Residency {
  constructor(private readonly options: ResidencyOptions) {}

  budget(): number {
    return this.options.memoryBudget > 0 ? this.options.memoryBudget : Math.floor(this.options.totalMemory() * 0.9);
  }

  /**
   * Makes room for `candidate` by calling `evict` on idle residents, oldest first; `residents` is read again after
   * each eviction (requests may have come and gone meanwhile). Throws `insufficient_memory` (500) when it can never
   * fit, `insufficient_memory_busy` (503, retry) when only busy models stand in the way.
   */
  async makeRoom(
    candidate: Candidate,
    residents: () => Resident[],
    evict: (name: string) => Promise<void>,
  ): Promise<void> {
    const need = candidate.estimate.total;
    const budget = this.budget();
    if (need > budget) {
      const { estimate } = candidate;
      const detail = `weights ${formatMemory(estimate.weights)}, KV cache ${formatMemory(estimate.kvCache)} for ${this.options.sequences} slot(s) of ${estimate.contextSize} tokens`;
      throw new FreeholdError(
        `${candidate.name} needs about ${formatMemory(need)} to load (${detail}), more than the memory budget of ${formatMemory(budget)}. Lower ${candidate.contextSetting} or --parallel, or raise FREEHOLD_MEMORY_BUDGET.`,
        { code: "insufficient_memory", status: 500, type: "server_error" },
      );
    }
    let used = residents().reduce((sum, resident) => sum + resident.memory, 0);
    let freed = 0;
    const free = this.options.freeMemory();
    while (need > Math.min(budget - used, free + freed)) {
      const victim = residents()
        .filter((resident) => !resident.busy)
        .sort((a, b) => a.lastUsed - b.lastUsed)[0];
      if (!victim) {
        const room = Math.max(0, Math.min(budget - used, free + freed));
        throw new OverloadedError(
          `not enough memory to load ${candidate.name} (needs about ${formatMemory(need)}, ${formatMemory(room)} available) while the loaded models are busy; retry shortly`,
          "insufficient_memory_busy",
          5,
        );
      }
      await evict(victim.name);
      used -= victim.memory;
      freed += victim.memory;
    }
  }
}
