// A runnable example of the main job: replace a file atomically and durably,
// then show what is on disk. Run it with `pnpm demo` from the repository root.
import { FileSystem } from "@effect/platform"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { AtomicFile, AtomicFileError } from "@intent/atomic-file"
import { Console, Effect, Stream } from "effect"

const program = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const atomic = yield* AtomicFile.AtomicFile
  const directory = yield* fs.makeTempDirectoryScoped({ prefix: "atomic-file-demo-" })
  const target = `${directory}/.intent/settings.json`

  yield* atomic.writeFileString(target, JSON.stringify({ version: 1 }) + "\n")
  yield* Console.log(`wrote ${target}: ${(yield* fs.readFileString(target)).trim()}`)

  yield* atomic.writeFileString(target, JSON.stringify({ version: 2 }) + "\n", { mode: 0o640 })
  const info = yield* fs.stat(target)
  yield* Console.log(
    `replaced it: ${(yield* fs.readFileString(target)).trim()} (mode ${(info.mode & 0o777).toString(8)})`
  )

  const lines = Stream.range(1, 3).pipe(Stream.map((n) => new TextEncoder().encode(`line ${n}\n`)))
  yield* atomic.writeStream(`${directory}/streamed.txt`, lines, { durability: "file" })
  yield* Console.log(`streamed: ${JSON.stringify(yield* fs.readFileString(`${directory}/streamed.txt`))}`)

  const failure = yield* Effect.flip(atomic.writeFileString(`${target}/child`, "x"))
  yield* Console.log(`a write under a file fails with a typed error:\n  ${AtomicFileError.formatError(failure)}`)

  yield* Console.log(`directory now holds: ${(yield* fs.readDirectory(`${directory}/.intent`)).join(", ")}`)
})

program.pipe(
  Effect.scoped,
  Effect.provide(AtomicFile.layerNode),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain
)
