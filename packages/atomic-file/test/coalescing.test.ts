/**
 * Whole-file writes queued for one path are coalesced: the last call's
 * content wins, each call returns only once its content or a newer one is
 * on disk, and a batch of queued writes costs one write. Also: the write
 * path's shortcut past `readlink` for a file it put in place itself.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { AtomicFile } from "../src/AtomicFile.js"
import * as FileLock from "../src/FileLock.js"
import { makeMemoryFileSystem } from "../src/testing.js"
import {
  LiveLayer,
  overrideOpenedFiles,
  readText,
  systemError,
  tempDirectory,
  tempFilesUnder,
  wrappedFileSystem
} from "./support.js"

const isTemp = (path: string) => path.endsWith("#atomic-tmp")
const contentOf = (i: number) => `call ${i} `.padEnd(100 + i, "x")
const indexOf = (text: string) => Number(/^call (\d+) /.exec(text)?.[1] ?? -1)

describe("coalesced writes", () => {
  it.scoped("100 concurrent writes to one file: the last call's content, each call returns once its content or a newer one is on disk, one rename", () => {
    let renames = 0
    const layer = wrappedFileSystem((real) => ({
      rename: (from, to) => Effect.zipRight(Effect.sync(() => renames++), real.rename(from, to))
    }))
    return Effect.gen(function*() {
      const atomic = yield* AtomicFile
      const dir = yield* tempDirectory
      const target = `${dir}/f`
      const seenAtReturn: Array<number> = []
      yield* Effect.forEach(
        Array.from({ length: 100 }, (_, i) => i + 1),
        (i) =>
          Effect.gen(function*() {
            yield* atomic.writeFileString(target, contentOf(i))
            seenAtReturn[i] = indexOf(yield* readText(target))
          }),
        { concurrency: "unbounded", discard: true }
      )
      expect(yield* readText(target)).toBe(contentOf(100))
      for (let i = 1; i <= 100; i++) {
        expect(seenAtReturn[i], `call ${i}`).toBeGreaterThanOrEqual(i)
      }
      // the first write starts at once, and takes its content only when it
      // fills its temporary file: the 99 others, started at the same moment,
      // join it while its first calls are in flight, and the batch writes once
      expect(renames).toBe(1)
      expect(yield* tempFilesUnder(dir)).toEqual([])
    }).pipe(Effect.provide(layer))
  })

  it.scoped("another operation queued between writes is not overtaken: an update sees the write before it", () =>
    Effect.gen(function*() {
      const atomic = yield* AtomicFile
      const dir = yield* tempDirectory
      const target = `${dir}/f`
      let updateSaw = ""
      yield* Effect.all([
        atomic.writeFileString(target, "one"),
        atomic.writeFileString(target, "two"),
        atomic.update(target, (current) =>
          Effect.sync(() => {
            updateSaw = Option.match(current, { onNone: () => "", onSome: (bytes) => new TextDecoder().decode(bytes) })
            return new TextEncoder().encode(`${updateSaw}+u`)
          })),
        atomic.writeFileString(target, "three")
      ], { concurrency: "unbounded", discard: true })
      expect(updateSaw).toBe("two")
      expect(yield* readText(target)).toBe("three")
    }).pipe(Effect.provide(LiveLayer)))

  it.scoped("writes with other options are not merged: each keeps its own durability and mode", () =>
    Effect.gen(function*() {
      const atomic = yield* AtomicFile
      const fs = yield* FileSystem.FileSystem
      const dir = yield* tempDirectory
      const target = `${dir}/f`
      yield* Effect.all([
        atomic.writeFileString(target, "a", { mode: 0o600 }),
        atomic.writeFileString(target, "b", { mode: 0o640 }),
        atomic.writeFileString(target, "c", { mode: 0o600 }),
        atomic.writeFileString(target, "d", { mode: 0o644 })
      ], { concurrency: "unbounded", discard: true })
      expect(yield* readText(target)).toBe("d")
      expect((yield* fs.stat(target)).mode & 0o777).toBe(0o644)
    }).pipe(Effect.provide(LiveLayer)))

  it.scopedLive("a queued write whose every caller is interrupted is not written", () => {
    const gate = Deferred.unsafeMake<void>(undefined as never)
    let held = false
    // the first rename waits for the gate, so the next write stays queued
    const layer = wrappedFileSystem((real) => ({
      rename: (from, to) =>
        Effect.suspend(() => {
          if (held) return real.rename(from, to)
          held = true
          return Effect.zipRight(Deferred.await(gate), real.rename(from, to))
        })
    }))
    return Effect.gen(function*() {
      const atomic = yield* AtomicFile
      const dir = yield* tempDirectory
      const target = `${dir}/f`
      const first = yield* Effect.fork(atomic.writeFileString(target, "first"))
      yield* Effect.sleep("50 millis")
      const second = yield* Effect.fork(atomic.writeFileString(target, "second"))
      const third = yield* Effect.fork(atomic.writeFileString(target, "third"))
      yield* Effect.sleep("20 millis")
      yield* Fiber.interrupt(second)
      yield* Fiber.interrupt(third)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(first)
      expect(yield* readText(target)).toBe("first")
      expect(yield* tempFilesUnder(dir)).toEqual([])
      // and the path's line goes on
      yield* atomic.writeFileString(target, "fourth")
      expect(yield* readText(target)).toBe("fourth")
    }).pipe(Effect.provide(layer))
  })

  it.scopedLive("a queued write with one caller interrupted and one waiting is written, and both return", () => {
    const gate = Deferred.unsafeMake<void>(undefined as never)
    let held = false
    const layer = wrappedFileSystem((real) => ({
      rename: (from, to) =>
        Effect.suspend(() => {
          if (held) return real.rename(from, to)
          held = true
          return Effect.zipRight(Deferred.await(gate), real.rename(from, to))
        })
    }))
    return Effect.gen(function*() {
      const atomic = yield* AtomicFile
      const dir = yield* tempDirectory
      const target = `${dir}/f`
      const first = yield* Effect.fork(atomic.writeFileString(target, "first"))
      yield* Effect.sleep("50 millis")
      const second = yield* Effect.fork(atomic.writeFileString(target, "second"))
      const third = yield* Effect.fork(atomic.writeFileString(target, "third"))
      yield* Effect.sleep("20 millis")
      yield* Fiber.interrupt(second)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(first)
      yield* Fiber.join(third)
      expect(yield* readText(target)).toBe("third")
      expect(yield* tempFilesUnder(dir)).toEqual([])
    }).pipe(Effect.provide(layer))
  })
})

/**
 * Holds the first call passed to `hold` that `matches`: `reached` once it
 * waits, `gate` lets it go on.
 */
const holdFirst = () => {
  const gate = Deferred.unsafeMake<void>(undefined as never)
  const reached = Deferred.unsafeMake<void>(undefined as never)
  let held = false
  const hold = <A, E, R>(matches: boolean, call: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.suspend(() => {
      if (held || !matches) return call
      held = true
      return Deferred.succeed(reached, undefined).pipe(Effect.zipRight(Deferred.await(gate)), Effect.zipRight(call))
    })
  return { gate, reached, hold }
}

/**
 * Writes "first" to `target` and, once its held call is `reached`, "second"
 * and "third", which join its batch; interrupts the first caller while they
 * wait (the chain of callbacks returns once its call in flight is over),
 * then opens the gate. Every call has returned when it is done.
 */
const interruptTheFirstOfThree = (
  atomic: AtomicFile,
  target: string,
  { gate, reached }: ReturnType<typeof holdFirst>
) =>
  Effect.gen(function*() {
    const first = yield* Effect.fork(atomic.writeFileString(target, "first"))
    yield* Deferred.await(reached)
    const joined = yield* Effect.fork(
      Effect.all([atomic.writeFileString(target, "second"), atomic.writeFileString(target, "third")], {
        concurrency: "unbounded"
      })
    )
    yield* Effect.sleep("20 millis")
    const interrupting = yield* Effect.fork(Fiber.interrupt(first))
    yield* Effect.sleep("20 millis")
    yield* Deferred.succeed(gate, undefined)
    const exit = yield* Fiber.join(interrupting)
    expect(exit._tag).toBe("Failure")
    // both joined calls return, with their content or a newer one on disk
    yield* Fiber.join(joined)
  })

/** A write to `target` that fails the test if the path's turn was never passed on. */
const writeInTime = (atomic: AtomicFile, target: string, text: string) =>
  Effect.timeoutFail(atomic.writeFileString(target, text), {
    duration: "10 seconds",
    onTimeout: () => new Error("the path's turn was never passed on")
  })

for (const direct of [false, true]) {
  describe(
    `coalesced writes: content taken late, a batch's caller interrupted (${
      direct ? "layerNode's writeFile path, one chain of callbacks" : "AtomicFile.Default"
    })`,
    () => {
      /**
       * A layer whose first `readLink` of `${name}` is held (`holdFirst`).
       * Both write paths start with one: the Effect path to resolve the
       * target, the chain of callbacks in its `lstat` (here made of
       * `readLink` and `stat`).
       */
      const holdFirstReadLink = (name: string) => {
        const holding = holdFirst()
        let renames = 0
        const layer = wrappedFileSystem((real) => ({
          readLink: (path) => holding.hold(path.endsWith(`/${name}`), real.readLink(path)),
          rename: (from, to) => Effect.zipRight(Effect.sync(() => renames++), real.rename(from, to))
        }), { direct })
        return { holding, layer, renames: () => renames }
      }

      it.scopedLive("writes made while the first one is still resolving its target join it: one rename, the last content", () => {
        const { holding: { gate, reached }, layer, renames } = holdFirstReadLink("f")
        return Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const dir = yield* tempDirectory
          const first = yield* Effect.fork(atomic.writeFileString(`${dir}/f`, "first"))
          yield* Deferred.await(reached)
          const later = yield* Effect.fork(
            Effect.all([atomic.writeFileString(`${dir}/f`, "second"), atomic.writeFileString(`${dir}/f`, "third")], {
              concurrency: "unbounded"
            })
          )
          yield* Effect.sleep("20 millis")
          yield* Deferred.succeed(gate, undefined)
          yield* Fiber.join(first)
          yield* Fiber.join(later)
          expect(yield* readText(`${dir}/f`)).toBe("third")
          expect(renames()).toBe(1)
          expect(yield* tempFilesUnder(dir)).toEqual([])
        }).pipe(Effect.provide(layer))
      })

      it.scopedLive("a write made once the content was taken is written after it, by a write of its own", () => {
        const { gate, hold, reached } = holdFirst()
        let renames = 0
        const layer = wrappedFileSystem((real) => ({
          rename: (from, to) => Effect.zipRight(Effect.sync(() => renames++), hold(true, real.rename(from, to)))
        }), { direct })
        return Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const dir = yield* tempDirectory
          const first = yield* Effect.fork(atomic.writeFileString(`${dir}/f`, "first"))
          yield* Deferred.await(reached)
          const second = yield* Effect.fork(atomic.writeFileString(`${dir}/f`, "second"))
          yield* Effect.sleep("20 millis")
          yield* Deferred.succeed(gate, undefined)
          yield* Fiber.join(first)
          yield* Fiber.join(second)
          expect(yield* readText(`${dir}/f`)).toBe("second")
          expect(renames).toBe(2)
        }).pipe(Effect.provide(layer))
      })

      it.scopedLive("the caller that started a batch is interrupted: those who joined it write again, and the last call's content wins", () => {
        const { holding, layer } = holdFirstReadLink("f")
        return Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const dir = yield* tempDirectory
          yield* atomic.writeFileString(`${dir}/g`, "unrelated")
          yield* interruptTheFirstOfThree(atomic, `${dir}/f`, holding)
          expect(yield* readText(`${dir}/f`)).toBe("third")
          expect(yield* tempFilesUnder(dir)).toEqual([])
          // and the path's line goes on
          yield* writeInTime(atomic, `${dir}/f`, "fourth")
          expect(yield* readText(`${dir}/f`)).toBe("fourth")
        }).pipe(Effect.provide(layer))
      })

      it.scopedLive("written again after its batch's caller was interrupted, a joined call never overtakes a newer one", () => {
        // the first write into a temporary file waits for the gate
        const { gate, hold, reached } = holdFirst()
        const layer = wrappedFileSystem(
          overrideOpenedFiles(
            (path) => path.endsWith("#atomic-tmp"),
            (file) => ({ write: (buffer) => hold(true, file.write(buffer)) })
          ),
          { direct }
        )
        return Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const dir = yield* tempDirectory
          const target = `${dir}/f`
          // "first" starts a batch that "joined" joins while the target is resolved
          const first = yield* Effect.fork(atomic.writeFileString(target, "first"))
          const joined = yield* Effect.fork(atomic.writeFileString(target, "joined"))
          yield* Deferred.await(reached)
          // the content ("joined") is taken; "newer" queues a batch of its own
          const newer = yield* Effect.fork(atomic.writeFileString(target, "newer"))
          yield* Effect.sleep("20 millis")
          // (the chain of callbacks returns once its write in flight is over)
          const interrupting = yield* Effect.fork(Fiber.interrupt(first))
          yield* Effect.sleep("20 millis")
          yield* Deferred.succeed(gate, undefined)
          yield* Fiber.join(interrupting)
          yield* Fiber.join(joined)
          yield* Fiber.join(newer)
          expect(yield* readText(target)).toBe("newer")
          expect(yield* tempFilesUnder(dir)).toEqual([])
        }).pipe(Effect.provide(layer))
      })
    }
  )
}

describe("the readlink shortcut for a file this writer put in place", () => {
  it.scoped("the second write to a path makes no readlink; a link put there since is followed", () => {
    const readLinks: Array<string> = []
    const layer = wrappedFileSystem((real) => ({
      readLink: (path) => Effect.zipRight(Effect.sync(() => readLinks.push(path)), real.readLink(path))
    }))
    return Effect.gen(function*() {
      const atomic = yield* AtomicFile
      const fs = yield* FileSystem.FileSystem
      const dir = yield* tempDirectory
      const target = `${dir}/f`
      yield* atomic.writeFileString(target, "one")
      expect(readLinks.filter((path) => !isTemp(path))).toEqual([target])
      yield* atomic.writeFileString(target, "two")
      expect(readLinks.length).toBe(1)
      // replaced behind the writer's back by a link to another file
      yield* fs.writeFileString(`${dir}/g`, "g")
      yield* fs.remove(target)
      yield* fs.symlink("g", target)
      yield* atomic.writeFileString(target, "three")
      expect(yield* fs.readLink(target)).toBe("g")
      expect(yield* readText(`${dir}/g`)).toBe("three")
      // replaced by another regular file (another inode: made while the old
      // one still exists, which a file system may otherwise reuse at once):
      // looked at again
      yield* fs.writeFileString(`${dir}/h`, "other")
      yield* fs.rename(`${dir}/h`, target)
      const before = readLinks.length
      yield* atomic.writeFileString(target, "four")
      expect(readLinks.length).toBe(before + 1)
      expect(yield* readText(target)).toBe("four")
      expect(yield* readText(`${dir}/g`)).toBe("three")
    }).pipe(Effect.provide(layer))
  })
})

describe("a write that finds its path idle, on layerNode's chain of callbacks", () => {
  it.scopedLive("interrupted while it goes on in the Effect path (the target is a link): those who joined write again, and the path's line goes on", () => {
    // the chain of callbacks leaves a link to the Effect path, whose first stat of the link's destination is held
    const holding = holdFirst()
    const layer = wrappedFileSystem((real) => ({
      stat: (path) => holding.hold(path.endsWith("/real"), real.stat(path))
    }), { direct: true })
    return Effect.gen(function*() {
      const atomic = yield* AtomicFile
      const fs = yield* FileSystem.FileSystem
      const dir = yield* tempDirectory
      yield* fs.writeFileString(`${dir}/real`, "old")
      yield* fs.symlink("real", `${dir}/f`)
      yield* interruptTheFirstOfThree(atomic, `${dir}/f`, holding)
      expect(yield* readText(`${dir}/real`)).toBe("third")
      expect(yield* fs.readLink(`${dir}/f`)).toBe("real")
      expect(yield* tempFilesUnder(dir)).toEqual([])
      yield* writeInTime(atomic, `${dir}/f`, "fourth")
      expect(yield* readText(`${dir}/real`)).toBe("fourth")
    }).pipe(Effect.provide(layer))
  })

  it.scopedLive("its write fails: every call that joined it gets the same error, the file is unchanged, and the line goes on", () => {
    const { gate, hold, reached } = holdFirst()
    let failed = false
    const layer = wrappedFileSystem((real) => ({
      ...overrideOpenedFiles(
        (path) => path.endsWith("#atomic-tmp"),
        (file, path) => ({
          write: (buffer) =>
            Effect.suspend(() => {
              if (failed) return file.write(buffer)
              failed = true
              return Effect.fail(systemError("write", "ENOSPC", path))
            })
        })
      )(real),
      // the first readLink of the target waits, so that the others join
      readLink: (path) => hold(path.endsWith("/f"), real.readLink(path))
    }), { direct: true })
    return Effect.gen(function*() {
      const atomic = yield* AtomicFile
      const fs = yield* FileSystem.FileSystem
      const dir = yield* tempDirectory
      yield* fs.writeFileString(`${dir}/f`, "old")
      const calls = yield* Effect.fork(
        Effect.all(
          ["first", "second", "third"].map((text) => Effect.flip(atomic.writeFileString(`${dir}/f`, text))),
          { concurrency: "unbounded" }
        )
      )
      yield* Deferred.await(reached)
      yield* Effect.sleep("20 millis")
      yield* Deferred.succeed(gate, undefined)
      const errors = yield* Fiber.join(calls)
      expect(errors.map((error) => error._tag)).toEqual(["TempWriteFailure", "TempWriteFailure", "TempWriteFailure"])
      for (const error of errors) {
        if (error._tag === "TempWriteFailure") {
          expect(error.reason).toMatchObject({ _tag: "DiskFull", code: "ENOSPC" })
        }
      }
      expect(yield* readText(`${dir}/f`)).toBe("old")
      expect(yield* tempFilesUnder(dir)).toEqual([])
      yield* writeInTime(atomic, `${dir}/f`, "fourth")
      expect(yield* readText(`${dir}/f`)).toBe("fourth")
    }).pipe(Effect.provide(layer))
  })
})

describe("coalesced writes: a call joins in the very step that finds the batch open", () => {
  // The runtime may run other fibers between two steps of one fiber: it
  // yields every so many operations (`maxOps`; below 10 Effect 3.22 itself
  // stops making progress). A call that found the batch open must put its
  // content in before any other fiber can take the batch's content. The
  // sweep starts the second call with a small `maxOps`, lets it run
  // `steps` turns of the scheduler, then lets the first call (held at its
  // temporary file's open, just before it takes the content) go on; over
  // the sweep the second call is caught at every point of its way in.
  it.effect("the runtime yielding between any two steps of the later call: its content always ends on disk", () =>
    Effect.gen(function*() {
      for (let maxOps = 10; maxOps <= 24; maxOps++) {
        for (let steps = 0; steps <= 12; steps++) {
          const { gate, hold, reached } = holdFirst()
          const layer = Layer.provideMerge(
            AtomicFile.DefaultWithoutDependencies,
            Layer.provideMerge(
              FileLock.layerMemory,
              Layer.merge(
                Layer.sync(FileSystem.FileSystem, () => {
                  const memory = makeMemoryFileSystem()
                  return { ...memory, open: (path, options) => hold(isTemp(path), memory.open(path, options)) }
                }),
                Path.layer
              )
            )
          )
          yield* Effect.gen(function*() {
            const atomic = yield* AtomicFile
            const first = yield* Effect.fork(atomic.writeFileString("/f", "first"))
            yield* Deferred.await(reached)
            const second = yield* Effect.fork(
              Effect.withMaxOpsBeforeYield(atomic.writeFileString("/f", "second"), maxOps)
            )
            for (let i = 0; i < steps; i++) yield* Effect.yieldNow()
            yield* Deferred.succeed(gate, undefined)
            yield* Fiber.join(first)
            yield* Fiber.join(second)
            expect(yield* readText("/f"), `maxOps ${maxOps}, after ${steps} steps of the second call`).toBe("second")
          }).pipe(
            Effect.provide(layer),
            // a call that never returns fails here, not at the test's timeout
            Effect.timeoutFail({
              duration: "5 seconds",
              onTimeout: () =>
                new Error(`maxOps ${maxOps}, after ${steps} steps of the second call: a call never returned`)
            })
          )
        }
      }
    }))
})
