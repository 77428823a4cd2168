import { defineProject } from "vitest/config"

export default defineProject({
  test: {
    name: "session-storage-sql",
    include: ["test/**/*.test.ts"],
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 60_000
  }
})
