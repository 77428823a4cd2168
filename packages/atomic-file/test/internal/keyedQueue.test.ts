import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/TestClock"
import { makeKeyedQueue } from "../../src/internal/keyedQueue.js"

describe("KeyedQueue", () => {
  it.effect("runs calls with one key one at a time, in call order", () =>
    Effect.gen(function*() {
      const queue = makeKeyedQueue()
      const log: Array<string> = []
      let running = 0
      let maxRunning = 0
      // later calls sleep less: without the queue they would finish first
      const task = (i: number) =>
        queue.run("k")(Effect.gen(function*() {
          running++
          maxRunning = Math.max(maxRunning, running)
          log.push(`start ${i}`)
          yield* Effect.sleep(`${100 - i} millis`)
          log.push(`end ${i}`)
          running--
        }))
      const fiber = yield* Effect.fork(
        Effect.forEach([1, 2, 3, 4, 5], task, { concurrency: "unbounded", discard: true })
      )
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(fiber)
      expect(maxRunning).toBe(1)
      expect(log).toEqual([1, 2, 3, 4, 5].flatMap((i) => [`start ${i}`, `end ${i}`]))
    }))

  it.effect("different keys run in parallel", () =>
    Effect.gen(function*() {
      const queue = makeKeyedQueue()
      const bothStarted = yield* Deferred.make<void>()
      let started = 0
      const task = (key: string) =>
        queue.run(key)(Effect.gen(function*() {
          started++
          if (started === 2) yield* Deferred.succeed(bothStarted, undefined)
          yield* Deferred.await(bothStarted)
        }))
      // would never finish if "a" and "b" were serialized
      yield* Effect.all([task("a"), task("b")], { concurrency: "unbounded" })
      expect(started).toBe(2)
    }))

  it.effect("an interrupted waiter does not let the next one overtake the running one", () =>
    Effect.gen(function*() {
      const queue = makeKeyedQueue()
      const gate = yield* Deferred.make<void>()
      const log: Array<string> = []
      const first = yield* Effect.fork(
        queue.run("k")(Effect.zipRight(Deferred.await(gate), Effect.sync(() => log.push("first"))))
      )
      yield* Effect.yieldNow()
      const second = yield* Effect.fork(queue.run("k")(Effect.sync(() => log.push("second"))))
      yield* Effect.yieldNow()
      const third = yield* Effect.fork(queue.run("k")(Effect.sync(() => log.push("third"))))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(second)
      yield* Effect.yieldNow()
      expect(log).toEqual([])
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(first)
      yield* Fiber.join(third)
      expect(log).toEqual(["first", "third"])
    }))

  it.effect("a failing call releases the key", () =>
    Effect.gen(function*() {
      const queue = makeKeyedQueue()
      const failed = yield* Effect.flip(queue.run("k")(Effect.fail("boom")))
      expect(failed).toBe("boom")
      expect(yield* queue.run("k")(Effect.succeed("next"))).toBe("next")
    }))
})
