// Child process of the many-processes sections: opens the store, tells the
// parent it is ready, waits for "go", saves `count` sessions with ids
// `p<worker>-<i>`, and reports when it started and finished (epoch ms).
//
//   node saveSessions.mjs <backend, as JSON (see stores.mjs)> <worker> <count>   (with an IPC channel)
import { SessionStorage } from "@intent/session-storage"
import { Effect } from "effect"
import { performance } from "node:perf_hooks"
import { sessionOf } from "../sessions.mjs"
import { storeLayer } from "../stores.mjs"

const [spec, worker, countArg] = process.argv.slice(2)
const count = Number(countArg)
const clock = () => performance.timeOrigin + performance.now()

const program = Effect.gen(function*() {
  const store = yield* SessionStorage.SessionStorage
  yield* store.list()
  process.send?.({ ready: true })
  yield* Effect.async((resume) => process.once("message", () => resume(Effect.void)))
  const started = clock()
  for (let i = 0; i < count; i++) {
    yield* store.save(sessionOf(`p${worker}-${i}`, `worker ${worker} save ${i}`))
  }
  return { started, finished: clock() }
}).pipe(
  Effect.provide(storeLayer(JSON.parse(spec)))
)

const result = await Effect.runPromise(program)
process.send?.(result, () => process.exit(0))
