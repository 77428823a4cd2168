// KeyValueStore.set of a 1 KiB value: @effect/platform's layerFileSystem
// against AtomicKeyValueStore.layerFileSystem at each durability.
import { KeyValueStore } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { AtomicKeyValueStore } from "@intent/atomic-file"
import { Effect, Layer } from "effect"
import { join } from "node:path"
import { now, shuffled, summarize } from "./measure.mjs"

const contenders = [
  ["KeyValueStore.layerFileSystem (plain writeFile, no fsync)", (dir) => KeyValueStore.layerFileSystem(dir)],
  [
    "AtomicKeyValueStore, durability \"none\"",
    (dir) => AtomicKeyValueStore.layerFileSystem(dir, { durability: "none" })
  ],
  [
    "AtomicKeyValueStore, durability \"file\"",
    (dir) => AtomicKeyValueStore.layerFileSystem(dir, { durability: "file" })
  ],
  ["AtomicKeyValueStore, durability \"full\" (default)", (dir) => AtomicKeyValueStore.layerFileSystem(dir)]
]

export const runKeyValueStore = ({ root, rounds, perRound }) => {
  const value = "v".repeat(1024)
  const program = Effect.gen(function*() {
    const stores = []
    for (const [name, layer] of contenders) {
      const context = yield* Layer.build(layer(join(root, "kv", String(stores.length))))
      stores.push({ name, store: context.unsafeMap.get(KeyValueStore.KeyValueStore.key), times: [] })
    }
    for (let round = 0; round < rounds; round++) {
      for (const entry of shuffled(stores)) {
        for (let i = 0; i < perRound; i++) {
          const started = now()
          yield* entry.store.set(`key-${i % 10}`, value)
          entry.times.push(now() - started)
        }
      }
    }
    const rows = stores.map(({ name, times }) => ({ name, ...summarize(times) }))
    return rows.map((row) => ({ ...row, ratio: row.median / rows[0].median }))
  })
  return Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(NodeContext.layer)))
}
