import { NodeContext } from "@effect/platform-node"
import * as FileSystem from "@effect/platform/FileSystem"
import * as KeyValueStore from "@effect/platform/KeyValueStore"
import { assert, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as AtomicKeyValueStore from "../src/AtomicKeyValueStore.js"
import { kill, requireBuild, spawnScript } from "./childProcess.js"
import { listTree, readText, tempDirectory } from "./support.js"

type MakeLayer = (directory: string) => Layer.Layer<KeyValueStore.KeyValueStore, unknown, FileSystem.FileSystem>

const implementations: ReadonlyArray<readonly [string, MakeLayer]> = [
  ["KeyValueStore.layerFileSystem", (dir) => KeyValueStore.layerFileSystem(dir).pipe(Layer.provide(NodeContext.layer))],
  [
    "AtomicKeyValueStore.layerFileSystem",
    (dir) => AtomicKeyValueStore.layerFileSystem(dir).pipe(Layer.provide(NodeContext.layer))
  ]
]

/** Runs `body` with a store of `makeLayer` in a fresh directory. */
const withStore = <A, E>(
  makeLayer: MakeLayer,
  body: (store: KeyValueStore.KeyValueStore, dir: string) => Effect.Effect<A, E, FileSystem.FileSystem>
) =>
  Effect.gen(function*() {
    const dir = yield* tempDirectory
    return yield* Effect.flatMap(KeyValueStore.KeyValueStore, (store) => body(store, `${dir}/kv`)).pipe(
      Effect.provide(makeLayer(`${dir}/kv`))
    )
  }).pipe(Effect.scoped, Effect.provide(NodeContext.layer))

const outcome = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.match(effect, {
    onSuccess: (value) => ({ ok: value }),
    onFailure: (error) => {
      const e = error as { _tag?: string; reason?: string; description?: string }
      return { error: e._tag, reason: e.reason, description: e._tag === "BadArgument" ? e.description : undefined }
    }
  })

// The behaviour both must share, run against each.
for (const [name, makeLayer] of implementations) {
  describe(`the KeyValueStore contract: ${name}`, () => {
    it.effect("get, set, has, remove, size, isEmpty", () =>
      withStore(makeLayer, (store) =>
        Effect.gen(function*() {
          expect(yield* store.get("a")).toEqual(Option.none())
          expect(yield* store.isEmpty).toBe(true)
          yield* store.set("a", "one")
          yield* store.set("b", new Uint8Array([1, 2, 3]))
          expect(yield* store.get("a")).toEqual(Option.some("one"))
          expect(Option.map(yield* store.getUint8Array("b"), Array.from)).toEqual(Option.some([1, 2, 3]))
          expect(Option.map(yield* store.getUint8Array("a"), (b) => new TextDecoder().decode(b))).toEqual(
            Option.some("one")
          )
          expect([yield* store.has("a"), yield* store.has("zz")]).toEqual([true, false])
          expect(yield* store.size).toBe(2)
          yield* store.remove("a")
          expect(yield* store.get("a")).toEqual(Option.none())
          expect(yield* store.size).toBe(1)
          expect(yield* outcome(store.remove("a"))).toMatchObject({ error: "SystemError", reason: "NotFound" })
        })))

    it.effect("keys are encoded with encodeURIComponent, one file each", () =>
      withStore(makeLayer, (store, dir) =>
        Effect.gen(function*() {
          yield* store.set("a/b c", "x")
          yield* store.set("ünï", "y")
          expect((yield* listTree(dir)).filter((n) => !n.includes("#"))).toEqual(["%C3%BCn%C3%AF", "a%2Fb%20c"])
          expect(yield* readText(`${dir}/a%2Fb%20c`)).toBe("x")
        })))

    it.effect("empty, . and .. keys are refused with the same BadArgument", () =>
      withStore(makeLayer, (store) =>
        Effect.gen(function*() {
          for (const key of ["", ".", ".."]) {
            for (const effect of [store.get(key), store.set(key, "v"), store.remove(key), store.has(key)]) {
              expect(yield* outcome(effect as Effect.Effect<unknown, unknown>)).toEqual({
                error: "BadArgument",
                reason: undefined,
                description: "Key must not be empty, . or .."
              })
            }
          }
        })))

    it.effect("modify and modifyUint8Array: Some(new value), None for a missing key (nothing created)", () =>
      withStore(makeLayer, (store) =>
        Effect.gen(function*() {
          yield* store.set("n", "1")
          expect(yield* store.modify("n", (v) => String(Number(v) + 1))).toEqual(Option.some("2"))
          expect(yield* store.get("n")).toEqual(Option.some("2"))
          expect(yield* store.modify("missing", () => "x")).toEqual(Option.none())
          expect(yield* store.has("missing")).toBe(false)
          yield* store.set("b", new Uint8Array([1]))
          const doubled = yield* store.modifyUint8Array("b", (v) => v.map((x) => x * 2))
          expect(Option.map(doubled, Array.from)).toEqual(Option.some([2]))
        })))

    it.effect("clear removes every key and keeps the directory", () =>
      withStore(makeLayer, (store, dir) =>
        Effect.gen(function*() {
          const fs = yield* FileSystem.FileSystem
          yield* store.set("a", "1")
          yield* store.set("b", "2")
          yield* store.clear
          expect(yield* store.size).toBe(0)
          expect(yield* fs.exists(dir)).toBe(true)
          yield* store.set("c", "3")
          expect(yield* store.get("c")).toEqual(Option.some("3"))
        })))

    it.effect("forSchema: get, set, modify through a schema", () =>
      withStore(makeLayer, (store) =>
        Effect.gen(function*() {
          const counters = store.forSchema(Schema.Struct({ count: Schema.Number }))
          yield* counters.set("c", { count: 1 })
          expect(yield* counters.modify("c", ({ count }) => ({ count: count + 1 }))).toEqual(Option.some({ count: 2 }))
          expect(yield* counters.get("c")).toEqual(Option.some({ count: 2 }))
          expect(yield* counters.modify("none", ({ count }) => ({ count }))).toEqual(Option.none())
          yield* store.set("bad", "not json")
          expect(yield* outcome(counters.get("bad"))).toMatchObject({ error: "ParseError" })
        })))
  })
}

describe("AtomicKeyValueStore where it differs", () => {
  it.effect("reads a directory written by layerFileSystem, and the reverse", () =>
    Effect.gen(function*() {
      const dir = yield* tempDirectory
      const platform = KeyValueStore.layerFileSystem(`${dir}/kv`).pipe(Layer.provide(NodeContext.layer))
      const atomic = AtomicKeyValueStore.layerFileSystem(`${dir}/kv`).pipe(Layer.provide(NodeContext.layer))
      yield* Effect.provide(Effect.flatMap(KeyValueStore.KeyValueStore, (s) => s.set("from platform", "p")), platform)
      yield* Effect.provide(
        Effect.flatMap(KeyValueStore.KeyValueStore, (s) =>
          Effect.gen(function*() {
            expect(yield* s.get("from platform")).toEqual(Option.some("p"))
            yield* s.set("from atomic", "a")
          })),
        atomic
      )
      yield* Effect.provide(
        Effect.flatMap(KeyValueStore.KeyValueStore, (s) =>
          Effect.map(s.get("from atomic"), (value) => expect(value).toEqual(Option.some("a")))),
        platform
      )
    }).pipe(Effect.scoped, Effect.provide(NodeContext.layer)))

  /**
   * A writer replaces one value over and over with values of 256 KiB, all
   * of one letter; readers read it concurrently. A read that is not exactly
   * 256 KiB of one letter saw part of a write.
   */
  const partialReads = (makeLayer: MakeLayer) =>
    withStore(makeLayer, (store) =>
      Effect.gen(function*() {
        const size = 256 * 1024
        const values = ["A", "B", "C"].map((letter) => letter.repeat(size))
        yield* store.set("v", values[0] ?? "")
        let stop = false
        const writer = yield* Effect.fork(Effect.gen(function*() {
          for (let i = 1; !stop; i++) yield* store.set("v", values[i % 3] ?? "")
        }))
        let partial = 0
        let reads = 0
        yield* Effect.forEach(
          [0, 1, 2, 3],
          () =>
            Effect.gen(function*() {
              for (let i = 0; i < 300; i++) {
                const value = Option.getOrElse(yield* store.get("v"), () => "")
                reads++
                if (value.length !== size || value !== (value[0] ?? "").repeat(size)) partial++
              }
            }),
          { concurrency: "unbounded", discard: true }
        )
        stop = true
        yield* Fiber.join(writer)
        return { partial, reads }
      }))

  it.live(
    "readers during set: never a partial value (layerFileSystem, the control, shows them)",
    () =>
      Effect.gen(function*() {
        const atomic = yield* partialReads((dir) =>
          AtomicKeyValueStore.layerFileSystem(dir, { durability: "none" }).pipe(Layer.provide(NodeContext.layer))
        )
        expect(atomic).toEqual({ partial: 0, reads: 1200 })
        const control = yield* partialReads((dir) =>
          KeyValueStore.layerFileSystem(dir).pipe(Layer.provide(NodeContext.layer))
        )
        console.info(
          `partial reads during set: AtomicKeyValueStore ${atomic.partial}/${atomic.reads}, ` +
            `layerFileSystem ${control.partial}/${control.reads}`
        )
        expect(control.reads).toBe(1200)
        expect(control.partial).toBeGreaterThan(0)
      }),
    120_000
  )

  it.scopedLive("modify from 4 processes x 250 increments: none lost", () =>
    Effect.gen(function*() {
      yield* requireBuild
      const dir = yield* tempDirectory
      const script = `
        import { NodeContext } from "@effect/platform-node"
        import { KeyValueStore } from "@effect/platform"
        import { Effect } from "effect"
        import { AtomicKeyValueStore } from DIST
        const [dir] = process.argv.slice(1)
        Effect.gen(function*() {
          const store = yield* KeyValueStore.KeyValueStore
          for (let i = 0; i < 250; i++) yield* store.modify("n", (v) => String(Number(v) + 1))
        }).pipe(
          Effect.provide(AtomicKeyValueStore.layerFileSystem(dir, { durability: "none" })),
          Effect.provide(NodeContext.layer),
          Effect.runPromise
        ).then(() => console.log("done"), (e) => { console.log("failed " + e); process.exit(1) })
      `
      yield* Effect.provide(
        Effect.flatMap(KeyValueStore.KeyValueStore, (s) => s.set("n", "0")),
        AtomicKeyValueStore.layerFileSystem(`${dir}/kv`).pipe(Layer.provide(NodeContext.layer))
      )
      const children = yield* Effect.forEach([1, 2, 3, 4], () => spawnScript(script, [`${dir}/kv`]))
      for (const child of children) {
        const exit = yield* child.exit
        expect(exit.code, child.lines.join(" | ")).toBe(0)
      }
      expect(yield* readText(`${dir}/kv/n`)).toBe("1000")
    }).pipe(Effect.provide(NodeContext.layer)), 120_000)

  it.scopedLive(
    "a writer killed during set leaves a whole value; reopening removes its temp file",
    () =>
      Effect.gen(function*() {
        yield* requireBuild
        const fs = yield* FileSystem.FileSystem
        const dir = yield* tempDirectory
        const script = `
        import { NodeContext } from "@effect/platform-node"
        import { KeyValueStore } from "@effect/platform"
        import { Effect } from "effect"
        import { AtomicKeyValueStore } from DIST
        const [dir] = process.argv.slice(1)
        Effect.gen(function*() {
          const store = yield* KeyValueStore.KeyValueStore
          for (let i = 0; ; i++) {
            yield* store.set("v", String.fromCharCode(65 + (i % 26)).repeat(1024 * 1024))
            if (i === 3) console.log("writing")
          }
        }).pipe(
          Effect.provide(AtomicKeyValueStore.layerFileSystem(dir, { durability: "none" })),
          Effect.provide(NodeContext.layer),
          Effect.runPromise
        )
      `
        for (let round = 0; round < 10; round++) {
          const child = yield* spawnScript(script, [`${dir}/kv`])
          yield* child.waitForLine((line) => line === "writing")
          yield* Effect.sleep(`${Math.floor(Math.random() * 30)} millis`)
          yield* kill(child)
          const value = yield* readText(`${dir}/kv/v`)
          expect(value.length).toBe(1024 * 1024)
          expect(value).toBe((value[0] ?? "").repeat(1024 * 1024))
        }
        // temp files the kills left never count as keys, and go when the store opens
        yield* Effect.provide(
          Effect.flatMap(KeyValueStore.KeyValueStore, (s) => Effect.map(s.size, (size) => expect(size).toBe(1))),
          AtomicKeyValueStore.layerFileSystem(`${dir}/kv`).pipe(Layer.provide(NodeContext.layer))
        )
        expect((yield* fs.readDirectory(`${dir}/kv`)).sort()).toEqual(["#store.lock", "v"])
      }).pipe(Effect.provide(NodeContext.layer)),
    120_000
  )

  it.effect("a clear interrupted by a crash is finished when the store is opened again", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* tempDirectory
      yield* fs.makeDirectory(`${dir}/kv`)
      // what a crash in the middle of clear leaves: the marker, some keys left
      yield* fs.writeFileString(`${dir}/kv/#clearing`, "")
      yield* fs.writeFileString(`${dir}/kv/left`, "1")
      yield* fs.writeFileString(`${dir}/kv/.left~9999999-0123456789abcdef#atomic-tmp`, "stale")
      const size = yield* Effect.provide(
        Effect.flatMap(KeyValueStore.KeyValueStore, (s) => s.size),
        AtomicKeyValueStore.layerFileSystem(`${dir}/kv`).pipe(Layer.provide(NodeContext.layer))
      )
      expect(size).toBe(0)
      expect(yield* fs.readDirectory(`${dir}/kv`)).toEqual(["#store.lock"])
    }).pipe(Effect.scoped, Effect.provide(NodeContext.layer)))

  it.effect("set errors keep the platform's error type, with the precise AtomicFile error as cause", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* tempDirectory
      yield* Effect.provide(
        Effect.flatMap(KeyValueStore.KeyValueStore, (store) =>
          Effect.gen(function*() {
            yield* fs.makeDirectory(`${dir}/kv/dir-key`)
            const error = yield* Effect.flip(store.set("dir-key", "x"))
            assert.strictEqual(error._tag, "SystemError")
            if (error._tag === "SystemError") {
              expect(error.module).toBe("KeyValueStore")
              expect(error.reason).toBe("BadResource")
              expect((error.cause as { _tag: string })._tag).toBe("TargetResolutionFailure")
              expect(error.description).toContain("the target is unchanged")
            }
          })),
        AtomicKeyValueStore.layerFileSystem(`${dir}/kv`).pipe(Layer.provide(NodeContext.layer))
      )
    }).pipe(Effect.scoped, Effect.provide(NodeContext.layer)))
})
