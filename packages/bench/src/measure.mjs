// Timing and summary helpers shared by the sections of the harness.
import { spawn } from "node:child_process"
import { performance } from "node:perf_hooks"

/** Microseconds since an arbitrary origin, sub-microsecond resolution. */
export const now = () => performance.now() * 1000

/**
 * sync(2) on request, by one shell started once: `sync()` resolves once the
 * system's dirty data is written out. Not `execFileSync("sync")` before each
 * timed item: starting a process forks this one, and for a while after it
 * the first write to each of this process's pages faults (copy-on-write), so
 * the item timed next paid for the fork, the more so the more memory it
 * touched (a fan-out of 100 fibers took 20 % longer right after one).
 */
export const makeSyncer = () => {
  const shell = spawn("sh", ["-c", "while read -r line; do sync; echo done; done"], {
    stdio: ["pipe", "pipe", "inherit"]
  })
  const waiting = []
  let received = ""
  shell.stdout.setEncoding("utf8")
  shell.stdout.on("data", (text) => {
    received += text
    let newline
    while ((newline = received.indexOf("\n")) !== -1) {
      received = received.slice(newline + 1)
      waiting.shift()?.resolve()
    }
  })
  shell.on("exit", (code) => {
    for (const waiter of waiting.splice(0)) waiter.reject(new Error(`the sync shell exited (${code})`))
  })
  return {
    sync: () =>
      new Promise((resolve, reject) => {
        waiting.push({ resolve, reject })
        shell.stdin.write("sync\n")
      }),
    close: () => shell.stdin.end()
  }
}

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
