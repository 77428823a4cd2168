import { defineProject } from "vitest/config"

export default defineProject({
  test: {
    name: "atomic-file",
    include: ["test/**/*.test.ts"],
    // each test file in its own process: the permission tests change the
    // process's effective uid for a moment, which must not leak into others
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 60_000
  }
})
