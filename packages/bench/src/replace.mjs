// Whole-file replace: AtomicFile at each durability against the raw Node
// sequences and the libraries people use; and 100 concurrent writes.
import { AtomicFile } from "@intent/atomic-file/AtomicFile"
import { writeFile as atomicallyWrite } from "atomically"
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import { mkdirSync, readFileSync } from "node:fs"
import * as fsp from "node:fs/promises"
import { dirname, join } from "node:path"
import { performance } from "node:perf_hooks"
import { Writer } from "steno"
import writeFileAtomic from "write-file-atomic"
import { makeSyncer, now, shuffled, summarize } from "./measure.mjs"

let rawCounter = 0

/**
 * The hand-written sequences a user writes without a library. `fsyncFile`:
 * fsync the temporary file before the rename; `fsyncDirectory`: open, fsync
 * and close the directory after it.
 */
const rawReplace = (fsyncFile, fsyncDirectory) => async (file, data) => {
  const temp = `${file}.raw-${process.pid}-${rawCounter++}`
  const handle = await fsp.open(temp, "w")
  await handle.write(data, 0, data.length, 0)
  if (fsyncFile) await handle.sync()
  await handle.close()
  await fsp.rename(temp, file)
  if (fsyncDirectory) {
    const directory = await fsp.open(dirname(file), "r")
    await directory.sync()
    await directory.close()
  }
}

const stenoWriters = new Map()
const stenoWrite = (file, data) => {
  let writer = stenoWriters.get(file)
  if (writer === undefined) {
    writer = new Writer(file)
    stenoWriters.set(file, writer)
  }
  return writer.write(data)
}

/**
 * Every contender: `group` is the durability it offers, and so the raw
 * sequence it is compared with; `raw` marks the reference of its group.
 */
export const contenders = [
  { name: "AtomicFile \"full\"", group: "full", durability: "full" },
  { name: "AtomicFile \"full\", Default layer", group: "full", durability: "full", layer: "default" },
  { name: "raw durable sequence", group: "full", raw: true, write: rawReplace(true, true) },
  { name: "AtomicFile \"file\"", group: "file", durability: "file" },
  { name: "raw sequence, file fsync only", group: "file", raw: true, write: rawReplace(true, false) },
  { name: "write-file-atomic", group: "file", write: (file, data) => writeFileAtomic(file, data) },
  { name: "atomically", group: "file", write: (file, data) => atomicallyWrite(file, data) },
  { name: "AtomicFile \"none\"", group: "none", durability: "none" },
  { name: "AtomicFile \"none\", Default layer", group: "none", durability: "none", layer: "default" },
  { name: "raw sequence without fsync", group: "none", raw: true, write: rawReplace(false, false) },
  { name: "steno", group: "none", write: stenoWrite },
  { name: "fs.promises.writeFile (not atomic)", group: "none", write: (file, data) => fsp.writeFile(file, data) }
]

/**
 * `count` writes of `data` to `file` one after another; the time of each in
 * µs. AtomicFile runs its loop inside one Effect (the way an Effect program
 * calls it), the others in an async loop.
 */
const timedWrites = (runtimes, contender, file, data, count) => {
  if (contender.durability !== undefined) {
    return runtimes[contender.layer ?? "node"].runPromise(Effect.gen(function*() {
      const atomic = yield* AtomicFile
      const times = []
      for (let i = 0; i < count; i++) {
        const started = now()
        yield* atomic.writeFile(file, data, { durability: contender.durability })
        times.push(now() - started)
      }
      return times
    }))
  }
  return (async () => {
    const times = []
    for (let i = 0; i < count; i++) {
      const started = now()
      await contender.write(file, data)
      times.push(now() - started)
    }
    return times
  })()
}

/**
 * Rounds over sizes and contenders: in each round, for each size, the
 * contenders run in a fresh random order, `perRound(size)` writes each,
 * every contender replacing its own existing file.
 */
export const runReplace = async ({ runtimes, root, sizes, rounds, perRound, log }) => {
  const results = new Map() // `${size} ${name}` → times
  const cpu = new Map() // `${size} ${name}` → CPU µs (user + system, thread pool included) of all its writes
  const main = new Map() // `${size} ${name}` → µs the main thread was busy (event loop not idle) during its writes
  const payloads = new Map(sizes.map((size) => [size, randomBytes(size)]))
  const fileOf = (size, index) => join(root, "replace", String(size), `c${index}`, "target.bin")
  for (const size of sizes) {
    for (let index = 0; index < contenders.length; index++) {
      const file = fileOf(size, index)
      mkdirSync(dirname(file), { recursive: true })
      await fsp.writeFile(file, payloads.get(size))
      // one warm-up write each, untimed (first-call costs: module code, JIT)
      await timedWrites(runtimes, contenders[index], file, payloads.get(size), 1)
    }
  }
  const syncer = makeSyncer()
  try {
    for (let round = 0; round < rounds; round++) {
      for (const size of sizes) {
        for (const index of shuffled(contenders.map((_, i) => i))) {
          const contender = contenders[index]
          // what the one before left unsynced is written out first: with ext4's
          // ordered journal, this contender's first fsync would otherwise write it
          await syncer.sync()
          const cpuBefore = process.cpuUsage()
          const loopBefore = performance.eventLoopUtilization()
          const times = await timedWrites(runtimes, contender, fileOf(size, index), payloads.get(size), perRound(size))
          const loopUsed = performance.eventLoopUtilization(loopBefore)
          const cpuUsed = process.cpuUsage(cpuBefore)
          const key = `${size} ${contender.name}`
          results.set(key, [...(results.get(key) ?? []), ...times])
          cpu.set(key, (cpu.get(key) ?? 0) + cpuUsed.user + cpuUsed.system)
          main.set(key, (main.get(key) ?? 0) + loopUsed.active * 1000)
        }
      }
      log(`replace: round ${round + 1}/${rounds}`)
    }
  } finally {
    syncer.close()
  }
  const rows = []
  for (const size of sizes) {
    const stats = contenders.map((contender) => ({
      size,
      contender,
      ...summarize(results.get(`${size} ${contender.name}`)),
      cpu: cpu.get(`${size} ${contender.name}`) / results.get(`${size} ${contender.name}`).length,
      main: main.get(`${size} ${contender.name}`) / results.get(`${size} ${contender.name}`).length
    }))
    for (const row of stats) {
      const raw = stats.find((s) => s.contender.raw && s.contender.group === row.contender.group)
      rows.push({ ...row, ratio: row.median / raw.median })
    }
  }
  return rows
}

/**
 * 100 concurrent writes of distinct contents: to one file (all at once), and
 * to 100 files. Total time per batch; whether the final content of the one
 * file is the last call's.
 */
export const runConcurrent = async ({ runtime, root, rounds, writers, size, log }) => {
  const concurrentContenders = contenders.filter((c) =>
    c.name !== "fs.promises.writeFile (not atomic)" && c.layer === undefined
  )
  const contentOf = (i) => {
    const data = Buffer.alloc(size, 0x61 + (i % 26))
    data.write(`call ${i};`)
    return data
  }
  const contents = Array.from({ length: writers }, (_, i) => contentOf(i))
  const last = contents[writers - 1]

  const batch = (contender, files) => {
    if (contender.durability !== undefined) {
      return runtime.runPromise(Effect.flatMap(AtomicFile, (atomic) =>
        Effect.forEach(
          contents,
          (data, i) => atomic.writeFile(files[i], data, { durability: contender.durability }),
          { concurrency: "unbounded", discard: true }
        )))
    }
    return Promise.all(contents.map((data, i) => contender.write(files[i], data)))
  }

  // Each round runs, in a fresh random order: every contender's batch to one
  // file and to 100 files, and the two references for the AtomicFile rows
  // (one "full" write to a file just created, as each batch's file is; and
  // forking 100 fibers that only yield, as the AtomicFile rows do to make
  // their calls). Before each, sync(2) writes out what the one before left
  // unsynced: with ext4's ordered journal an fsync would otherwise also write
  // the data of the files a contender without fsync left dirty.
  const results = new Map()
  const record = (key, elapsed) => {
    const entry = results.get(key) ?? { times: [], lastWins: 0, checked: 0 }
    entry.times.push(elapsed)
    results.set(key, entry)
    return entry
  }
  // each item: its result key, the files to create first ("old"), the timed run, and what to check after it
  const checkBatch = (contender, shape) => (files, entry) => {
    if (shape === "one file") {
      entry.checked++
      if (readFileSync(files[0]).equals(last)) entry.lastWins++
      else if (contender.durability !== undefined) {
        throw new Error(`${contender.name}: after ${writers} concurrent writes the file is not the last call's`)
      }
    } else {
      contents.forEach((data, i) => {
        if (!readFileSync(files[i]).equals(data)) throw new Error(`${contender.name}: ${files[i]} is wrong`)
      })
    }
  }
  const items = [
    ...concurrentContenders.flatMap((contender) =>
      ["one file", "100 files"].map((shape) => ({
        key: `${shape} ${contender.name}`,
        files: (directory) =>
          contents.map((_, i) => join(directory, shape === "one file" ? "target.bin" : `target-${i}.bin`)),
        run: (files) => batch(contender, files),
        check: checkBatch(contender, shape)
      }))
    ),
    {
      key: "singleFresh",
      files: (directory) => [join(directory, "target.bin")],
      run: ([file]) => runtime.runPromise(Effect.flatMap(AtomicFile, (atomic) => atomic.writeFile(file, contents[0])))
    },
    {
      key: "fanOut",
      files: () => [],
      run: () =>
        runtime.runPromise(
          Effect.forEach(contents, () => Effect.yieldNow(), { concurrency: "unbounded", discard: true })
        )
    }
  ]
  const syncer = makeSyncer()
  try {
    for (let round = 0; round < rounds; round++) {
      for (const [index, item] of shuffled(items.map((item, index) => [index, item]))) {
        const directory = join(root, "concurrent", `r${round}`, `i${index}`)
        mkdirSync(directory, { recursive: true })
        const files = item.files(directory)
        for (const file of new Set(files)) await fsp.writeFile(file, "old")
        await syncer.sync()
        const started = now()
        await item.run(files)
        const entry = record(item.key, now() - started)
        item.check?.(files, entry)
      }
      log(`concurrent: round ${round + 1}/${rounds}`)
    }
  } finally {
    syncer.close()
  }
  const rows = concurrentContenders.flatMap((contender) =>
    ["one file", "100 files"].map((shape) => {
      const entry = results.get(`${shape} ${contender.name}`)
      return { contender, shape, ...summarize(entry.times), lastWins: entry.lastWins, checked: entry.checked }
    })
  )
  return {
    rows,
    fanOut: summarize(results.get("fanOut").times),
    singleFresh: summarize(results.get("singleFresh").times)
  }
}
