/**
 * `directReplace`, the replace of bytes in memory as one chain of callbacks,
 * on scripted calls: the order and the overlaps of its calls at each
 * durability, when it falls back to the Effect path, its typed failures and
 * what it cleans up, and interruption before and after the rename. Then on
 * Node: `layerNode`'s writeFile takes it, and a link makes it fall back.
 */
import { NodeContext } from "@effect/platform-node"
import { type PlatformError, SystemError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { AtomicFile } from "../../src/AtomicFile.js"
import * as FileLock from "../../src/FileLock.js"
import { type DirectOutcome, directReplace, type DirectRequest, Fallback } from "../../src/internal/directReplace.js"
import { type Callback, type DirectCalls, HandlesService } from "../../src/internal/handles.js"
import { nodeHandles } from "../../src/internal/nodeHandles.js"
import { effectiveIds } from "../../src/internal/processInfo.js"
import { readText, tempDirectory, tempFilesUnder } from "../support.js"

const errorOf = (method: string, code: string): PlatformError =>
  new SystemError({
    module: "FileSystem",
    method,
    reason: "Unknown",
    pathOrDescriptor: method,
    description: `${code} in ${method}`,
    cause: Object.assign(new Error(code), { code })
  })

const infoOf = (type: FileSystem.File.Type, mode: number, uid = effectiveIds()?.uid ?? 0): FileSystem.File.Info => ({
  type,
  mtime: Option.none(),
  atime: Option.none(),
  birthtime: Option.none(),
  dev: 1,
  rdev: Option.none(),
  ino: Option.some(2),
  mode,
  nlink: Option.some(1),
  uid: Option.some(uid),
  gid: Option.some(effectiveIds()?.gid ?? 0),
  size: FileSystem.Size(0),
  blksize: Option.none(),
  blocks: Option.none()
})

type Name = keyof DirectCalls

interface Script {
  /** what lstat finds; default a regular file of mode 0o644 */
  readonly lstat?: FileSystem.File.Info | "absent"
  /** a call (by name, or `name#n` for its n-th) that fails with an errno */
  readonly fail?: Readonly<Record<string, string>>
  /** the count each write reports, from what it was given; default all */
  readonly written?: (asked: number) => number
  /** complete every call before it returns */
  readonly synchronous?: boolean
  /** a call (by name) whose completion waits for `release` */
  readonly hold?: Name
}

/**
 * Calls that record `+name` when made and `-name` when complete (on a later
 * turn of the event loop, so that calls made together are seen to overlap).
 * The temporary file gets descriptor 3, the directory 4.
 */
const scripted = (script: Script = {}) => {
  const events: Array<string> = []
  const args: Array<[Name, ReadonlyArray<unknown>]> = []
  const counts = new Map<string, number>()
  let held: (() => void) | undefined
  let heldReached: (() => void) | undefined
  const reached = new Promise<void>((resolve) => {
    heldReached = resolve
  })
  const calls = {} as Record<Name, (...args: Array<unknown>) => void>
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each call's own arguments
  const define = <A>(name: Name, result: (...args: Array<any>) => A) => {
    calls[name] = (...callArgs: Array<unknown>) => {
      const callback = callArgs[callArgs.length - 1] as Callback<A>
      const given = callArgs.slice(0, -1)
      const n = (counts.get(name) ?? 0) + 1
      counts.set(name, n)
      const label = name === "fsync" || name === "close" ? `${name} ${given[0] === 3 ? "temp" : "directory"}` : name
      events.push(`+${label}`)
      args.push([name, given])
      const errno = script.fail?.[`${name}#${n}`] ?? script.fail?.[name]
      const complete = () => {
        events.push(`-${label}`)
        if (errno !== undefined) return callback(errorOf(name, errno), undefined as never)
        callback(undefined, result(...given))
      }
      if (script.hold === name) {
        held = complete
        heldReached?.()
      } else if (script.synchronous) complete()
      else setImmediate(complete)
    }
  }
  const lstat = script.lstat ?? infoOf("File", 0o100644)
  define("lstat", () => {
    if (lstat === "absent") throw new Error("unreachable")
    return lstat
  })
  if (lstat === "absent") {
    script = { ...script, fail: { lstat: "ENOENT", ...script.fail } }
  }
  define("create", () => 3)
  define(
    "write",
    (_fd: number, data: Uint8Array, offset: number) => (script.written ?? ((n) => n))(data.length - offset)
  )
  define("fsync", () => undefined)
  define("close", () => undefined)
  define("openDirectory", () => 4)
  define("rename", () => undefined)
  define("remove", () => undefined)
  define("chmod", () => undefined)
  define("chown", () => undefined)
  return {
    calls: calls as unknown as DirectCalls,
    events,
    args,
    /** the held call has been made */
    reached,
    release: () => held?.()
  }
}

const request = (overrides: Partial<DirectRequest> = {}): Effect.Effect<DirectRequest, never, Path.Path> =>
  Effect.map(Path.Path, (path) => ({
    operation: "writeFile",
    path,
    absolute: "/d/target",
    take: () => new TextEncoder().encode("new content"),
    durability: "full",
    requestedMode: undefined,
    createMode: 0o644,
    umask: 0o022,
    ...overrides
  }))

const run = (calls: DirectCalls, overrides: Partial<DirectRequest> = {}) =>
  Effect.flatMap(request(overrides), (req) => directReplace(calls, req))

const before = (events: ReadonlyArray<string>, a: string, b: string) => {
  const i = events.indexOf(a)
  const j = events.indexOf(b)
  expect(i, `${a} in ${events.join(" ")}`).toBeGreaterThanOrEqual(0)
  expect(j, `${b} in ${events.join(" ")}`).toBeGreaterThanOrEqual(0)
  expect(i < j, `${a} before ${b}: ${events.join(" ")}`).toBe(true)
}

interface Failure {
  readonly _tag: string
  readonly reason: { readonly _tag: string }
  readonly tempPath: string
  readonly directory: string
}

const failureOf = (exit: Exit.Exit<DirectOutcome, unknown>): Failure | undefined =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) as Failure | undefined : undefined

describe("directReplace on scripted calls", () => {
  it.effect("durability full: lstat beside the create, the directory opened during the write, the close beside the rename, then the directory's fsync", () =>
    Effect.gen(function*() {
      const fake = scripted()
      expect(yield* run(fake.calls)).toBe(0o644)
      const { events } = fake
      // started together
      before(events, "+create", "-lstat")
      before(events, "+lstat", "-create")
      before(events, "+openDirectory", "-write")
      before(events, "-write", "+fsync temp")
      before(events, "-fsync temp", "+rename")
      before(events, "+close temp", "-rename")
      before(events, "-rename", "+fsync directory")
      before(events, "-openDirectory", "+fsync directory")
      expect(events).toContain("+close directory")
      expect(events.filter((e) => e.startsWith("+")).map((e) => e.slice(1)).sort()).toEqual(
        [
          "close directory",
          "close temp",
          "create",
          "fsync directory",
          "fsync temp",
          "lstat",
          "openDirectory",
          "rename",
          "write"
        ]
      )
      // the temp file is in the target's directory, renamed onto the target
      const [from, to] = fake.args.find(([name]) => name === "rename")?.[1] as [string, string]
      expect(from.startsWith("/d/.target~")).toBe(true)
      expect(to).toBe("/d/target")
    }).pipe(Effect.provide(Path.layer)))

  it.effect("durability file: the file's fsync, no directory; none: neither", () =>
    Effect.gen(function*() {
      const file = scripted()
      yield* run(file.calls, { durability: "file" })
      expect(file.events.filter((e) => e.startsWith("+"))).toEqual(
        expect.arrayContaining(["+fsync temp", "+rename", "+close temp"])
      )
      expect(file.events.some((e) => e.includes("directory"))).toBe(false)
      const none = scripted()
      yield* run(none.calls, { durability: "none" })
      expect(none.events.some((e) => e.includes("fsync") || e.includes("directory"))).toBe(false)
      expect(none.events).toContain("-rename")
    }).pipe(Effect.provide(Path.layer)))

  it.effect("calls that complete before they return (a synchronous FileSystem) run the same chain", () =>
    Effect.gen(function*() {
      const fake = scripted({ synchronous: true })
      expect(yield* run(fake.calls)).toBe(0o644)
      expect(fake.events).toContain("-fsync directory")
    }).pipe(Effect.provide(Path.layer)))

  it.effect("short writes are continued from where they stopped; a write of nothing fails with IOError", () =>
    Effect.gen(function*() {
      const fake = scripted({ written: (asked) => Math.min(asked, 4) })
      yield* run(fake.calls, { durability: "none" })
      const writes = fake.args.filter(([name]) => name === "write").map(([, a]) => [a[2], a[3]])
      // "new content" is 11 bytes: offsets (and positions) 0, 4, 8
      expect(writes).toEqual([[0, 0], [4, 4], [8, 8]])

      const stuck = scripted({ written: () => 0 })
      const error = failureOf(yield* Effect.exit(run(stuck.calls)))
      expect(error?._tag).toBe("TempWriteFailure")
      expect(error?.reason._tag).toBe("IOError")
      expect(stuck.events).toContain("-remove")
      expect(stuck.events).not.toContain("+rename")
    }).pipe(Effect.provide(Path.layer)))

  it.effect("a link, a directory, a failed lstat or a failed create: Fallback, before any byte, the temporary file removed", () =>
    Effect.gen(function*() {
      for (const lstat of [infoOf("SymbolicLink", 0o120777), infoOf("Directory", 0o40755)]) {
        const fake = scripted({ lstat })
        expect(yield* run(fake.calls)).toBe(Fallback)
        expect(fake.events).not.toContain("+write")
        expect(fake.events).toContain("-close temp")
        expect(fake.events).toContain("-remove")
      }
      const statFailed = scripted({ fail: { lstat: "EACCES" } })
      expect(yield* run(statFailed.calls)).toBe(Fallback)
      expect(statFailed.events).toContain("-remove")
      // nothing created: nothing to remove
      const createFailed = scripted({ fail: { create: "ENOENT" } })
      expect(yield* run(createFailed.calls)).toBe(Fallback)
      expect(createFailed.events).not.toContain("+remove")
      expect(createFailed.events).not.toContain("+close temp")
    }).pipe(Effect.provide(Path.layer)))

  it.effect("no file yet: created with the mode asked for, renamed into place", () =>
    Effect.gen(function*() {
      const fake = scripted({ lstat: "absent" })
      expect(yield* run(fake.calls, { createMode: 0o640, requestedMode: 0o640 })).toBe(0o640)
      expect(fake.args.find(([name]) => name === "create")?.[1][1]).toBe(0o640)
      expect(fake.events).not.toContain("+chmod")
    }).pipe(Effect.provide(Path.layer)))

  it.effect("a file narrower than the mode guessed: the temporary file narrowed before any byte is written", () =>
    Effect.gen(function*() {
      const fake = scripted({ lstat: infoOf("File", 0o100600) })
      expect(yield* run(fake.calls, { createMode: 0o644 })).toBe(0o600)
      expect(fake.args.find(([name]) => name === "chmod")?.[1][1]).toBe(0o600)
      before(fake.events, "-chmod", "+write")
    }).pipe(Effect.provide(Path.layer)))

  it.effect("a file of another owner: chown before the rename, EPERM ignored, other errors fail", () =>
    Effect.gen(function*() {
      const other = infoOf("File", 0o100644, (effectiveIds()?.uid ?? 0) + 1)
      const ignored = scripted({ lstat: other, fail: { chown: "EPERM" } })
      expect(yield* run(ignored.calls)).toBe(0o644)
      before(ignored.events, "-chown", "+rename")
      const failed = scripted({ lstat: other, fail: { chown: "EIO" } })
      const error = failureOf(yield* Effect.exit(run(failed.calls)))
      expect(error?._tag).toBe("TempWriteFailure")
      expect(failed.events).toContain("-remove")
      expect(failed.events).not.toContain("+rename")
    }).pipe(Effect.provide(Path.layer)))

  it.effect("a failed write or fsync: TempWriteFailure with its reason, the temp file closed and removed, the directory closed", () =>
    Effect.gen(function*() {
      for (const [call, errno, reason] of [["write", "ENOSPC", "DiskFull"], ["fsync#1", "EIO", "IOError"]] as const) {
        const fake = scripted({ fail: { [call]: errno } })
        const error = failureOf(yield* Effect.exit(run(fake.calls)))
        expect(error?._tag).toBe("TempWriteFailure")
        expect(error?.reason._tag).toBe(reason)
        expect(error?.tempPath.startsWith("/d/.target~")).toBe(true)
        before(fake.events, "-close temp", "+remove")
        expect(fake.events).not.toContain("+rename")
        expect(fake.events).toContain("+close directory")
      }
    }).pipe(Effect.provide(Path.layer)))

  it.effect("a failed rename: RenameFailure, the temp file removed; a failed directory fsync or open after it: DirectorySyncFailure, nothing removed", () =>
    Effect.gen(function*() {
      const rename = scripted({ fail: { rename: "EXDEV" } })
      const renameError = failureOf(yield* Effect.exit(run(rename.calls)))
      expect(renameError?._tag).toBe("RenameFailure")
      expect(renameError?.reason._tag).toBe("CrossDevice")
      expect(rename.events).toContain("-remove")
      expect(rename.events).not.toContain("+fsync directory")

      for (const fail of [{ "fsync#2": "EIO" }, { openDirectory: "EACCES" }]) {
        const fake = scripted({ fail })
        const error = failureOf(yield* Effect.exit(run(fake.calls)))
        expect(error?._tag).toBe("DirectorySyncFailure")
        expect(error?.directory).toBe("/d")
        expect(fake.events).toContain("-rename")
        expect(fake.events).not.toContain("+remove")
      }
    }).pipe(Effect.provide(Path.layer)))

  it.effect("a temp file that cannot be removed after a failure: the primary error stays", () =>
    Effect.gen(function*() {
      const fake = scripted({ fail: { write: "EIO", remove: "EACCES" } })
      const error = failureOf(yield* Effect.exit(run(fake.calls)))
      expect(error?._tag).toBe("TempWriteFailure")
      expect(error?.reason._tag).toBe("IOError")
    }).pipe(Effect.provide(Path.layer)))

  it.effect("an exception thrown inside the chain ends the replace as a defect, rather than leaving it waiting", () =>
    Effect.gen(function*() {
      const broken = Object.defineProperty({ ...infoOf("File", 0o100644) }, "mode", {
        get: () => {
          throw new Error("boom")
        }
      })
      const fake = scripted({ lstat: broken })
      const exit = yield* Effect.exit(run(fake.calls))
      expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
    }).pipe(Effect.provide(Path.layer)))

  /**
   * Interrupts a replace while `hold` is in flight: the interruption must
   * wait for that call (checked 20 ms in), then for what follows it.
   */
  const interruptDuring = (hold: Name) =>
    Effect.gen(function*() {
      const fake = scripted({ hold })
      const fiber = yield* Effect.fork(run(fake.calls))
      yield* Effect.promise(() => fake.reached)
      const interrupting = yield* Effect.fork(Fiber.interrupt(fiber))
      yield* Effect.sleep("20 millis")
      expect(interrupting.unsafePoll()).toBeNull()
      fake.release()
      const exit = yield* Fiber.join(interrupting)
      return { events: fake.events, exit }
    })

  it.live("interrupted before the rename: stops at the next step, and returns once the temp file is closed and removed", () =>
    Effect.gen(function*() {
      const { events, exit } = yield* interruptDuring("write")
      expect(Exit.isInterrupted(exit)).toBe(true)
      expect(events).toContain("-remove")
      expect(events).not.toContain("+rename")
      expect(events).toContain("+close directory")
    }).pipe(Effect.provide(Path.layer)))

  it.live("interrupted once the rename has started: the replace runs to its end, directory fsync included", () =>
    Effect.gen(function*() {
      const { events } = yield* interruptDuring("rename")
      expect(events).toContain("-fsync directory")
      expect(events).not.toContain("+remove")
    }).pipe(Effect.provide(Path.layer)))
})

describe("AtomicFile.layerNode takes the direct replace", () => {
  /** layerNode's handles, with their direct calls counted */
  const counted = () => {
    const made: Array<string> = []
    const direct = Object.fromEntries(
      Object.entries(nodeHandles.direct as DirectCalls).map(([name, call]) => [name, (...args: Array<unknown>) => {
        made.push(name)
        return (call as (...args: Array<unknown>) => void)(...args)
      }])
    ) as unknown as DirectCalls
    const layer = Layer.provideMerge(
      AtomicFile.DefaultWithoutDependencies.pipe(
        Layer.provide(Layer.succeed(HandlesService, { ...nodeHandles, direct }))
      ),
      Layer.provideMerge(FileLock.layer, NodeContext.layer)
    )
    return { made, layer }
  }

  it.scoped("100 concurrent writes to one file: one direct replace, the last call's content", () => {
    const { layer, made } = counted()
    return Effect.gen(function*() {
      const atomic = yield* AtomicFile
      const dir = yield* tempDirectory
      yield* atomic.writeFileString(`${dir}/f`, "old")
      made.length = 0
      yield* Effect.forEach(
        Array.from({ length: 100 }, (_, i) => i),
        (i) => atomic.writeFileString(`${dir}/f`, `content ${i}`),
        { concurrency: "unbounded", discard: true }
      )
      expect(made.filter((call) => call === "rename")).toEqual(["rename"])
      expect(yield* readText(`${dir}/f`)).toBe("content 99")
    }).pipe(Effect.provide(layer))
  })

  it.scoped("writeFile of a regular file: all its calls direct; of a link: falls back and writes through the link", () => {
    const { layer, made } = counted()
    return Effect.gen(function*() {
      const atomic = yield* AtomicFile
      const fs = yield* FileSystem.FileSystem
      const dir = yield* tempDirectory
      yield* atomic.writeFileString(`${dir}/f`, "one")
      expect(made).toEqual(expect.arrayContaining(["lstat", "create", "write", "fsync", "rename", "openDirectory"]))
      expect(yield* readText(`${dir}/f`)).toBe("one")

      made.length = 0
      yield* fs.symlink("f", `${dir}/link`)
      yield* atomic.writeFileString(`${dir}/link`, "two")
      // the direct attempt saw the link, removed its temp file and gave up
      expect(made).toEqual(expect.arrayContaining(["lstat", "create", "close", "remove"]))
      expect(made).not.toContain("rename")
      expect(yield* readText(`${dir}/f`)).toBe("two")
      expect(yield* fs.readLink(`${dir}/link`)).toBe("f")
      expect(yield* tempFilesUnder(dir)).toEqual([])
    }).pipe(Effect.provide(layer))
  })
})
