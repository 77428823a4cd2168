import { NodeContext } from "@effect/platform-node"
import { describe, expect, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { nodeHandles } from "../../src/internal/nodeHandles.js"
import { bytes, readText, tempDirectory } from "../support.js"

const created = (path: string) =>
  Effect.acquireRelease(nodeHandles.create(path, 0o644), (handle) => Effect.orDie(handle.close))

layer(NodeContext.layer)("node:fs handles", (it) => {
  describe("write", () => {
    it.scoped("an effect run twice writes twice, each time at the position reached", () =>
      Effect.gen(function*() {
        const dir = yield* tempDirectory
        const handle = yield* created(`${dir}/f`)
        // the buffer goes to node:fs through a holder emptied once the call
        // starts: each run must fill its own
        const write = handle.write(bytes("ab"))
        expect(yield* write).toBe(2)
        expect(yield* write).toBe(2)
        expect(yield* handle.write(bytes("c"))).toBe(1)
        expect(yield* readText(`${dir}/f`)).toBe("ababc")
      }))
  })
})
