import { configDefaults, defineProject } from "vitest/config"

// The power-loss test takes minutes (hundreds of ext4 images): it runs in the
// reliability run (`RELIABILITY_REPORT=1`, see docs/reliability/), not in
// the default `pnpm test`.
const slow = ["test/reliability/powerLoss.test.ts"]

export default defineProject({
  test: {
    name: "atomic-file",
    include: ["test/**/*.test.ts"],
    exclude: [...configDefaults.exclude, ...(process.env.RELIABILITY_REPORT === "1" ? [] : slow)],
    // each test file in its own process: the permission tests change the
    // process's effective uid for a moment, which must not leak into others
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 60_000
  }
})
