// What the pieces of a write cost on this machine, in the same run: the
// platform's file system calls (one that fails, one that succeeds), the
// error they build, and the Effect constructs a write path may use. CPU time
// (user + system) of this process per operation, and wall time.
import { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { SystemError } from "@effect/platform/Error"
import { Effect } from "effect"
import { close, lstat, mkdirSync, open, rename, write, writeFileSync } from "node:fs"
import * as fsp from "node:fs/promises"
import { join } from "node:path"
import { now, shuffled } from "./measure.mjs"

const measureSync = (name, count, f) => {
  for (let i = 0; i < Math.min(100, count); i++) f()
  const cpu = process.cpuUsage()
  const started = now()
  for (let i = 0; i < count; i++) f()
  const used = process.cpuUsage(cpu)
  return { name, wall: (now() - started) / count, cpu: (used.user + used.system) / count }
}

export const runBuildingBlocks = async ({ root, count }) => {
  const dir = join(root, "blocks")
  mkdirSync(dir, { recursive: true })
  const file = join(dir, "file")
  writeFileSync(file, "x")
  const rows = []
  rows.push(
    measureSync("new SystemError(…) (what the platform builds for every failed call)", count, () =>
      new SystemError({
        reason: "Unknown",
        module: "FileSystem",
        method: "readLink",
        pathOrDescriptor: file,
        syscall: "readlink",
        description: "EINVAL: invalid argument, readlink",
        cause: Object.assign(new Error("EINVAL"), { code: "EINVAL" })
      }))
  )

  const effects = [
    ["FileSystem.readLink of a regular file (fails: EINVAL)", (fs) => fs.readLink(file)],
    ["FileSystem.stat", (fs) => fs.stat(file)],
    ["FileSystem.chmod", (fs) => fs.chmod(file, 0o644)],
    ["FileSystem.open + close (scoped)", (fs) => Effect.scoped(fs.open(file, { flag: "r" }))],
    [
      "node:fs open + close with callbacks, in one Effect.async (how AtomicFile.layerNode opens files)",
      () =>
        Effect.async((resume) =>
          open(file, "r", (error, fd) => {
            if (error) return resume(Effect.fail(error))
            close(fd, () => resume(Effect.void))
          })
        )
    ],
    [
      "Effect.scoped(Effect.acquireRelease) of nothing (what FileSystem.open adds)",
      () => Effect.scoped(Effect.acquireRelease(Effect.void, () => Effect.void))
    ],
    [
      "Effect.acquireUseRelease of nothing (how AtomicFile holds its temporary file)",
      () => Effect.acquireUseRelease(Effect.void, () => Effect.void, () => Effect.void)
    ],
    ["Effect.scoped(Effect.void)", () => Effect.scoped(Effect.void)],
    ["Effect.fork + join of Effect.void", () => Effect.flatMap(Effect.fork(Effect.void), (fiber) => fiber.await)],
    [
      "Effect.all of two FileSystem.stat, concurrency 2",
      (fs) => Effect.all([fs.stat(file), fs.stat(file)], { concurrency: 2 })
    ],
    ["two FileSystem.stat one after the other", (fs) => Effect.zipRight(fs.stat(file), fs.stat(file))]
  ]
  await Effect.runPromise(
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      for (const [name, make] of effects) {
        const effect = Effect.exit(make(fs))
        for (let i = 0; i < Math.min(100, count); i++) yield* effect
        const cpu = process.cpuUsage()
        const started = now()
        for (let i = 0; i < count; i++) yield* effect
        const used = process.cpuUsage(cpu)
        rows.push({ name, wall: (now() - started) / count, cpu: (used.user + used.system) / count })
      }
    }).pipe(Effect.provide(NodeFileSystem.layer))
  )

  for (let i = 0; i < 100; i++) await fsp.stat(file)
  const cpu = process.cpuUsage()
  const started = now()
  for (let i = 0; i < count; i++) await fsp.stat(file)
  const used = process.cpuUsage(cpu)
  rows.push({
    name: "fs.promises.stat (no Effect)",
    wall: (now() - started) / count,
    cpu: (used.user + used.system) / count
  })

  // what the target's lstat adds to a replace without fsync: the same
  // node:fs callback sequence with and without it, alternating in chunks;
  // and what waiting for it costs an Effect program: the replace with the
  // lstat, in one Effect.async per replace from an Effect loop (as
  // AtomicFile.layerNode's writeFile runs), against a Promise per replace
  // from an async loop
  const data = Buffer.alloc(4096, 0x61)
  let counter = 0
  const replace = (withLstat, done) => {
    const target = join(dir, withLstat ? "checked" : "plain")
    const temp = `${target}.tmp-${counter++}`
    let waiting = withLstat ? 2 : 1
    let fd
    const next = () => {
      if (--waiting > 0) return
      write(fd, data, 0, data.length, 0, (error) => {
        if (error) return done(error)
        close(fd, (error) => error ? done(error) : rename(temp, target, done))
      })
    }
    if (withLstat) lstat(target, () => next())
    open(temp, "wx", 0o644, (error, opened) => {
      if (error) return done(error)
      fd = opened
      next()
    })
  }
  const viaPromise = (withLstat) =>
    new Promise((resolve, reject) => replace(withLstat, (error) => error ? reject(error) : resolve()))
  const viaAsync = (withLstat) =>
    Effect.async((resume) => replace(withLstat, (error) => resume(error ? Effect.die(error) : Effect.void)))
  const runChunk = async (sequence, n) => {
    if (sequence.effect) {
      return Effect.runPromise(Effect.gen(function*() {
        for (let i = 0; i < n; i++) yield* viaAsync(sequence.withLstat)
      }))
    }
    for (let i = 0; i < n; i++) await viaPromise(sequence.withLstat)
  }
  const sequences = [
    { name: "replace of 4 KiB without fsync, node:fs callbacks: open, write, close, rename", withLstat: false },
    {
      name: "the same with the target's lstat started beside the open (AtomicFile's check of the target)",
      withLstat: true
    },
    {
      name: "the same with the lstat, each replace awaited as one Effect.async from an Effect loop",
      withLstat: true,
      effect: true
    }
  ].map((sequence) => ({ ...sequence, wall: 0, cpu: 0 }))
  for (const sequence of sequences) await runChunk(sequence, 50)
  const chunk = 50
  for (let done = 0; done < count; done += chunk) {
    for (const sequence of shuffled(sequences)) {
      const cpu = process.cpuUsage()
      const started = now()
      await runChunk(sequence, chunk)
      const used = process.cpuUsage(cpu)
      sequence.wall += now() - started
      sequence.cpu += used.user + used.system
    }
  }
  const measured = Math.ceil(count / chunk) * chunk
  for (const sequence of sequences) {
    rows.push({ name: sequence.name, wall: sequence.wall / measured, cpu: sequence.cpu / measured })
  }
  return rows
}
