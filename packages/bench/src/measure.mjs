// Timing and summary helpers shared by the sections of the harness.
import { performance } from "node:perf_hooks"

/** Microseconds since an arbitrary origin, sub-microsecond resolution. */
export const now = () => performance.now() * 1000

/** A copy of `items` in random order (Fisher–Yates). */
export const shuffled = (items) => {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[out[i], out[j]] = [out[j], out[i]]
  }
  return out
}

/** Median, min and max of a list of numbers. */
export const summarize = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const n = sorted.length
  if (n === 0) return { median: NaN, min: NaN, max: NaN, n }
  const median = n % 2 === 1 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
  return { median, min: sorted[0], max: sorted[n - 1], n }
}

/** A duration in µs, printed in the unit that keeps it short. */
export const duration = (us) =>
  !Number.isFinite(us)
    ? "–"
    : us >= 10_000_000
    ? `${(us / 1_000_000).toFixed(1)} s`
    : us >= 10_000
    ? `${(us / 1000).toFixed(1)} ms`
    : `${us.toFixed(0)} µs`

export const ratio = (x) => Number.isFinite(x) ? x.toFixed(2) : "–"

export const bytes = (n) =>
  n >= 1 << 30
    ? `${n / (1 << 30)} GiB`
    : n >= 1 << 20
    ? `${n / (1 << 20)} MiB`
    : n >= 1 << 10
    ? `${n / (1 << 10)} KiB`
    : `${n} B`

/** A markdown table from a header row and rows of cells. */
export const table = (header, rows, align) =>
  [
    `| ${header.join(" | ")} |`,
    `| ${header.map((_, i) => (align?.[i] ?? "l") === "r" ? "---:" : "---").join(" | ")} |`,
    ...rows.map((row) => `| ${row.join(" | ")} |`)
  ].join("\n")
