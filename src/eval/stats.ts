/**
 * The statistics an evaluation reports: a Wilson interval for a pass rate, percentiles, and an exact paired test
 * (McNemar's, which is a sign test on the discordant cases) for "is this model worse than the baseline?".
 */

/** z for a two-sided 95% interval. */
const Z95 = 1.959963984540054;

/** Wilson score interval for `passes` out of `trials` (95%); [0, 1] when there are no trials. */
export function wilsonInterval(passes: number, trials: number, z = Z95): { low: number; high: number } {
  if (trials === 0) return { low: 0, high: 1 };
  const p = passes / trials;
  const z2 = z * z;
  const denominator = 1 + z2 / trials;
  const centre = (p + z2 / (2 * trials)) / denominator;
  const half = (z * Math.sqrt((p * (1 - p)) / trials + z2 / (4 * trials * trials))) / denominator;
  // At 0 or all passes one end is exactly 0 or 1 (rounding would leave 1e-16 off).
  return { low: passes === 0 ? 0 : centre - half, high: passes === trials ? 1 : centre + half };
}

/** The q-th percentile (0–100) by linear interpolation between closest ranks; null for no values. */
export function percentile(values: readonly number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (q / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (rank - low);
}

/** Two-sided exact binomial test of `k` successes in `n` trials against p = 0.5 (the sign test). */
export function signTest(k: number, n: number): number {
  if (n === 0) return 1;
  const smaller = Math.min(k, n - k);
  let tail = 0;
  if (n <= 50) {
    // Binomial coefficients are exact integers here, and 2^-n is exact: the p-value is exact.
    let choose = 1;
    for (let i = 0; i <= smaller; i++) {
      tail += choose;
      choose = (choose * (n - i)) / (i + 1);
    }
    return Math.min(1, 2 * tail * 2 ** -n);
  }
  let logMass = -n * Math.LN2;
  for (let i = 0; i <= smaller; i++) {
    tail += Math.exp(logMass);
    logMass += Math.log(n - i) - Math.log(i + 1);
  }
  return Math.min(1, 2 * tail);
}

export interface PairedComparison {
  /** Cases the baseline passed and the candidate failed. */
  baselineOnly: number;
  /** Cases the candidate passed and the baseline failed. */
  candidateOnly: number;
  /** Exact McNemar p-value (two-sided). */
  pValue: number;
  /** The candidate is worse than the baseline at the 5% level. */
  significantlyWorse: boolean;
  significantlyBetter: boolean;
}

/** McNemar's exact test over cases both models answered: only the cases where they disagree carry information. */
export function mcnemar(pairs: readonly { candidate: boolean; baseline: boolean }[], alpha = 0.05): PairedComparison {
  let baselineOnly = 0;
  let candidateOnly = 0;
  for (const pair of pairs) {
    if (pair.baseline && !pair.candidate) baselineOnly++;
    if (pair.candidate && !pair.baseline) candidateOnly++;
  }
  const pValue = signTest(candidateOnly, baselineOnly + candidateOnly);
  return {
    baselineOnly,
    candidateOnly,
    pValue,
    significantlyWorse: pValue < alpha && baselineOnly > candidateOnly,
    significantlyBetter: pValue < alpha && candidateOnly > baselineOnly,
  };
}
