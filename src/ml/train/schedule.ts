/**
 * Cosine decay from `initial` to `initial * minFactor` over `totalSteps` optimizer steps
 * (Loshchilov & Hutter 2017 without restarts); held at the floor afterwards.
 */
export function cosineDecay(step: number, totalSteps: number, initial: number, minFactor = 0): number {
  if (totalSteps <= 0) return initial;
  const t = Math.min(Math.max(step, 0), totalSteps) / totalSteps;
  const floor = initial * minFactor;
  return floor + 0.5 * (initial - floor) * (1 + Math.cos(Math.PI * t));
}
