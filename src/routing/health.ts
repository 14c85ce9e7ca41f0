import type { RoutingTable } from "./table.js";

/**
 * Probes each remote provider that asks for it (`health_check: seconds`) and marks its targets healthy or not;
 * balancing prefers healthy targets, and a probe that answers lets an open breaker try again.
 */
export class HealthMonitor {
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly controller = new AbortController();

  constructor(table: RoutingTable) {
    for (const provider of table.providers.values()) {
      if (provider.healthCheckMs <= 0 || provider.origin === null) continue;
      const targets = [...table.routes.values()]
        .flatMap((route) => route.tiers.flat())
        .filter((target) => target.provider === provider);
      const probe = async () => {
        const timeout = AbortSignal.any([
          this.controller.signal,
          AbortSignal.timeout(Math.min(10_000, provider.healthCheckMs)),
        ]);
        const healthy = await provider.health(timeout).then(
          () => true,
          () => false,
        );
        if (this.controller.signal.aborted) return;
        for (const target of targets) {
          target.healthy = healthy;
          if (healthy) target.breaker.healthy();
        }
      };
      const timer = setInterval(() => void probe(), provider.healthCheckMs);
      timer.unref();
      this.timers.push(timer);
      void probe();
    }
  }

  dispose(): void {
    this.controller.abort();
    for (const timer of this.timers) clearInterval(timer);
  }
}
