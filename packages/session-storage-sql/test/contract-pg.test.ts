import { describe, it } from "@effect/vitest"
import { isCI, pgBackend, probePg } from "./backends.js"
import { contract } from "./contract.js"

const server = await probePg()

if (server.ok) {
  contract(pgBackend)
} else if (isCI) {
  describe("SessionStorage contract on pg", () => {
    it("needs the PostgreSQL server that .ci/run starts (CI=true: a missing server fails)", () => {
      throw new Error(server.reason)
    })
  })
} else {
  describe.skip(`SessionStorage contract on pg: skipped, ${server.reason}`, () => {
    it("runs when INTENT_TEST_PG_URL names a reachable server", () => undefined)
  })
}
