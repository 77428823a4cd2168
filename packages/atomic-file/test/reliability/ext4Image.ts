/**
 * A real ext4 file system on a loop device, and what a power cut would leave
 * of it: the image file copied while the writer is stopped and the loop
 * device completes no write. Linux and root only. Every loop device and
 * mount is tied to a scope and undone when the scope closes, also on failure;
 * only devices this module attached (`losetup --find --show`) are detached.
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import { execFileSync, spawnSync } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"
import { basename } from "node:path"

/** Why the power-loss test cannot run here, or undefined when it can. */
export const unavailableBecause = (): string | undefined => {
  if (process.platform !== "linux") return `needs Linux (ext4, loop devices); this is ${process.platform}`
  if (typeof process.geteuid !== "function" || process.geteuid() !== 0) {
    return "needs root (mkfs, losetup, mount); run the reliability tests as root"
  }
  for (const tool of ["mkfs.ext4", "e2fsck", "losetup", "mount", "umount", "cp"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) return `needs ${tool} on the PATH`
  }
  return undefined
}

const run = (command: string, args: ReadonlyArray<string>): string =>
  execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })

/**
 * `mkfs.ext4` options: 4 KiB blocks, and inode tables and journal written
 * now, so that nothing initialises in the background while images are taken.
 */
export const mkfsOptions = ["-b", "4096", "-E", "lazy_itable_init=0,lazy_journal_init=0"] as const
/** 128 MiB */
export const imageBytes = 128 * 1024 * 1024
/**
 * `noauto_da_alloc`: ext4 must not force the allocation of a file's blocks
 * when it is renamed over another or truncated, which would paper over a
 * missing fsync.
 */
export const mountOptions = "noauto_da_alloc"

/** Makes an empty ext4 file system in a new sparse file of `imageBytes`. */
export const makeExt4Image = (file: string) =>
  Effect.sync(() => {
    run("truncate", ["-s", String(imageBytes), file])
    run("mkfs.ext4", ["-q", "-F", ...mkfsOptions, file])
  })

/** Attaches `file` to a free loop device for the scope. */
export const loopDevice = (file: string, options: { readonly readOnly: boolean }) =>
  Effect.acquireRelease(
    Effect.sync(() => run("losetup", ["--find", "--show", ...(options.readOnly ? ["--read-only"] : []), file]).trim()),
    (device) => Effect.sync(() => run("losetup", ["--detach", device]))
  )

/** `mount` refused: for a repaired image, a sign that the repair left it damaged. */
export class MountFailure extends Data.TaggedError("MountFailure")<{ readonly message: string }> {}

/**
 * Mounts the ext4 on `device` at `directory` for the scope. A busy file
 * system is detached lazily rather than left mounted.
 */
export const mountExt4 = (device: string, directory: string, options: string) =>
  Effect.acquireRelease(
    Effect.suspend(() => {
      const mount = spawnSync("mount", ["-t", "ext4", "-o", options, device, directory], { encoding: "utf8" })
      return mount.status === 0
        ? Effect.void
        : Effect.fail(new MountFailure({ message: `mount -o ${options} ${device}: ${mount.stderr.trim()}` }))
    }),
    () =>
      Effect.sync(() => {
        if (spawnSync("umount", [directory]).status !== 0) run("umount", ["-l", directory])
      })
  )

/** Every option the kernel applies to the ext4 on `device`, defaults included (data=, commit=, ...). */
export const ext4Options = (device: string): string =>
  readFileSync(`/proc/fs/ext4/${basename(device)}/options`, "utf8").trim().split("\n").join(",")

/**
 * The counters of `/sys/block/loopN/stat` that change when the device
 * completes a request that alters the backing file (writes, discards,
 * flushes), and the number of requests in flight.
 */
export interface DeviceActivity {
  readonly completed: string
  readonly inFlight: number
}

// Documentation/block/stat.rst: 0-3 reads, 4-7 writes, 8 in_flight,
// 9-10 io/queue time, 11-14 discards, 15-16 flushes.
const changingFields = [4, 5, 6, 11, 12, 13, 15] as const

export const deviceActivity = (device: string): DeviceActivity => {
  const fields = readFileSync(`/sys/block/${basename(device)}/stat`, "utf8").trim().split(/\s+/)
  return {
    completed: changingFields.map((index) => fields[index] ?? "-").join(" "),
    inFlight: Number(fields[8] ?? "0")
  }
}

/**
 * True when every thread of `pid` is stopped (state `T` in
 * `/proc/PID/task/TID/stat`). A thread inside a system call (an fsync, a
 * write) stops only when the call returns.
 */
export const allThreadsStopped = (pid: number): boolean =>
  readdirSync(`/proc/${pid}/task`).every((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8")
    // the command name in parentheses may hold spaces: the state follows the last ")"
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "T"
  })

/** Stops `pid` with SIGSTOP and waits until every thread of it is stopped. */
export const stopProcess = (pid: number) =>
  Effect.gen(function*() {
    process.kill(pid, "SIGSTOP")
    for (let attempt = 0; attempt < 5000; attempt++) {
      if (allThreadsStopped(pid)) return
      yield* Effect.sleep("1 millis")
    }
    return yield* Effect.dieMessage(`process ${pid}: its threads did not all stop within 5 s`)
  })

/**
 * Copies `image` (the backing file of `device`) to `copy`, again until the
 * device completed no request during the copy and had none in flight before
 * and after it: the kernel keeps committing the journal and writing back
 * after the writer stops, and a copy taken across such a write would be a
 * state no power cut can leave. Returns the number of copies discarded.
 */
export const copyQuiescentImage = (image: string, device: string, copy: string) =>
  Effect.gen(function*() {
    for (let discarded = 0; discarded < 1000; discarded++) {
      const before = deviceActivity(device)
      if (before.inFlight === 0) {
        run("cp", ["--sparse=always", image, copy])
        const after = deviceActivity(device)
        if (after.inFlight === 0 && after.completed === before.completed) return discarded
      }
      yield* Effect.sleep("2 millis")
    }
    return yield* Effect.dieMessage(`${device} never stayed idle for the length of a copy`)
  })

/**
 * `e2fsck -fy` on an image: replays the journal and repairs, as a boot after
 * a power cut would. Exit status 0 (clean) or 1 (errors corrected, a replay
 * included) is normal; 4 and above means the file system was left damaged.
 */
export const fsckImage = (copy: string): { readonly status: number; readonly output: string } => {
  const result = spawnSync("e2fsck", ["-fy", copy], { encoding: "utf8" })
  return { status: result.status ?? 128, output: `${result.stdout}${result.stderr}` }
}

/** A file on a mounted image that cannot be read (other than missing). */
export class ImageUnreadable extends Data.TaggedError("ImageUnreadable")<{ readonly message: string }> {}

/**
 * Reads `file` (relative to the root of the file system) from the image
 * `copy`, mounted read-only on a read-only loop device for the moment of the
 * read; `undefined` when the file is missing. `noload` is not needed:
 * `e2fsck` replayed the journal already. Should a replay still be pending,
 * ext4 refuses a read-only device ("recovery required on readonly
 * filesystem") rather than replay it behind the check's back, so what is
 * read is exactly what the repair left, or the image counts as damaged.
 */
export const readFromImage = (copy: string, mountPoint: string, file: string) =>
  Effect.scoped(Effect.gen(function*() {
    const device = yield* loopDevice(copy, { readOnly: true })
    yield* mountExt4(device, mountPoint, "ro")
    return yield* Effect.suspend(() => {
      try {
        return Effect.succeed<Uint8Array | undefined>(new Uint8Array(readFileSync(`${mountPoint}/${file}`)))
      } catch (error) {
        return (error as NodeJS.ErrnoException).code === "ENOENT"
          ? Effect.succeed(undefined)
          : Effect.fail(new ImageUnreadable({ message: String(error) }))
      }
    })
  }))

/** The machine and tools, for the report. */
export const describeMachine = () => {
  const e2fsprogs = spawnSync("mkfs.ext4", ["-V"], { encoding: "utf8" })
  return {
    kernel: run("uname", ["-srm"]).trim(),
    e2fsprogs: `${e2fsprogs.stdout}${e2fsprogs.stderr}`.split("\n")[0]?.trim() ?? "unknown"
  }
}
