/**
 * A FileSystem that wraps another and fails chosen calls: the Nth call (of
 * every FileSystem and File method that can fail), or every call of a
 * method, with a chosen errno; or makes the Nth call, when it is a write,
 * short. It also records every call, so a test can first count the calls of
 * an operation, then fail each one in turn.
 */
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import { systemError } from "./memoryFileSystem.js"

export interface FaultPlan {
  /** 1-based index, over all counted calls since the plan was armed, of the call to fail */
  readonly call?: number
  /** fail every call of this method (`open`, `write`, `sync`, `rename`, ...) */
  readonly method?: string
  /** the errno of the failure; ignored with `shortWrite` */
  readonly errno: string
  /** instead of failing, make the chosen call (a `write`) write half of its bytes */
  readonly shortWrite?: boolean
}

export interface FaultController {
  /** arms a plan and resets the call count */
  readonly arm: (plan: FaultPlan | undefined) => Effect.Effect<void>
  /** the calls made since the last `arm`, as `method path` */
  readonly calls: Effect.Effect<ReadonlyArray<string>>
  /** how many times the plan fired since the last `arm` */
  readonly fired: Effect.Effect<number>
}

export const make = (real: FileSystem.FileSystem): { fs: FileSystem.FileSystem; controller: FaultController } => {
  let plan: FaultPlan | undefined
  let log: Array<string> = []
  let fired = 0

  /** Counts the call and decides its fate. */
  const decide = (method: string, target: string | number): "fail" | "short" | "pass" => {
    log.push(`${method} ${target}`)
    if (plan === undefined || (plan.call === undefined && plan.method === undefined)) return "pass"
    const callMatches = plan.call === undefined || plan.call === log.length
    const methodMatches = plan.method === undefined || plan.method === method
    if (!callMatches || !methodMatches) return "pass"
    if (plan.shortWrite) {
      if (method !== "write") return "pass"
      fired++
      return "short"
    }
    fired++
    return "fail"
  }

  const guard = <A>(method: string, target: string | number, effect: () => Effect.Effect<A, PlatformError>) =>
    Effect.suspend(() =>
      decide(method, target) === "fail" ? Effect.fail(systemError(method, plan?.errno ?? "EIO", target)) : effect()
    )

  const wrapFile = (file: FileSystem.File, path: string): FileSystem.File => ({
    [FileSystem.FileTypeId]: FileSystem.FileTypeId,
    fd: file.fd,
    get stat() {
      return guard("fstat", path, () => file.stat)
    },
    seek: (offset, from) => file.seek(offset, from),
    get sync() {
      return guard("sync", path, () => file.sync)
    },
    read: (buffer) => guard("read", path, () => file.read(buffer)),
    readAlloc: (size) => guard("readAlloc", path, () => file.readAlloc(size)),
    truncate: (length) => guard("truncate", path, () => file.truncate(length)),
    write: (buffer) =>
      Effect.suspend(() => {
        switch (decide("write", path)) {
          case "fail":
            return Effect.fail(systemError("write", plan?.errno ?? "EIO", path))
          case "short":
            return file.write(buffer.subarray(0, Math.floor(buffer.length / 2)))
          case "pass":
            return file.write(buffer)
        }
      }),
    writeAll: (buffer) => guard("writeAll", path, () => file.writeAll(buffer))
  })

  const fs: FileSystem.FileSystem = {
    ...real,
    access: (path, options) => guard("access", path, () => real.access(path, options)),
    chmod: (path, mode) => guard("chmod", path, () => real.chmod(path, mode)),
    chown: (path, uid, gid) => guard("chown", path, () => real.chown(path, uid, gid)),
    exists: (path) => guard("exists", path, () => real.exists(path)),
    makeDirectory: (path, options) => guard("makeDirectory", path, () => real.makeDirectory(path, options)),
    open: (path, options) =>
      Effect.suspend(() =>
        decide("open", path) === "fail"
          ? Effect.fail(systemError("open", plan?.errno ?? "EIO", path))
          : Effect.map(real.open(path, options), (file) => wrapFile(file, path))
      ),
    readDirectory: (path, options) => guard("readDirectory", path, () => real.readDirectory(path, options)),
    readFile: (path) => guard("readFile", path, () => real.readFile(path)),
    readFileString: (path, encoding) => guard("readFileString", path, () => real.readFileString(path, encoding)),
    readLink: (path) => guard("readLink", path, () => real.readLink(path)),
    realPath: (path) => guard("realPath", path, () => real.realPath(path)),
    remove: (path, options) => guard("remove", path, () => real.remove(path, options)),
    rename: (from, to) => guard("rename", from, () => real.rename(from, to)),
    stat: (path) => guard("stat", path, () => real.stat(path)),
    truncate: (path, length) => guard("truncate", path, () => real.truncate(path, length)),
    writeFile: (path, data, options) => guard("writeFile", path, () => real.writeFile(path, data, options)),
    writeFileString: (path, data, options) =>
      guard("writeFileString", path, () => real.writeFileString(path, data, options))
  }

  const controller: FaultController = {
    arm: (next) =>
      Effect.sync(() => {
        plan = next
        log = []
        fired = 0
      }),
    calls: Effect.sync(() => [...log]),
    fired: Effect.sync(() => fired)
  }
  return { fs, controller }
}
