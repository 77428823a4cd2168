// Child process of the writeStream section: writes `bytes` bytes in 64 KiB
// chunks to `file`, either with AtomicFile.writeStream (durability "full") or
// with a raw Node write stream (write, fsync, close, rename, fsync directory),
// and prints the time and the growth of the peak resident set size.
//
//   node writeStream.mjs <atomic|atomic-default|raw> <file> <bytes> <fresh|reused>
//
// "atomic" uses AtomicFile.layerNode, "atomic-default" AtomicFile.Default (the
// platform's FileSystem and File.write).
//
// "fresh": a new buffer per chunk, as a producer of data hands them over;
// "reused": one buffer written again and again, so that the growth measured
// is the writer's own, not the producer's garbage waiting for a collection.
import { NodeContext } from "@effect/platform-node"
import { AtomicFile, layerNode } from "@intent/atomic-file/AtomicFile"
import { Effect, Layer, Option, Stream } from "effect"
import { createWriteStream } from "node:fs"
import * as fsp from "node:fs/promises"
import { dirname } from "node:path"
import { performance } from "node:perf_hooks"
import { finished } from "node:stream/promises"

const [mode, file, bytesArg, buffers] = process.argv.slice(2)
const total = Number(bytesArg)
const CHUNK = 64 * 1024
const chunks = Math.ceil(total / CHUNK)
const reused = new Uint8Array(CHUNK).fill(0x61)
const chunkAt = (i) => {
  const size = Math.min(CHUNK, total - i * CHUNK)
  return buffers === "reused" ? reused.subarray(0, size) : new Uint8Array(size).fill(i & 0xff)
}

const run = async () => {
  if (mode === "atomic" || mode === "atomic-default") {
    const layer = Layer.provideMerge(
      mode === "atomic" ? layerNode : AtomicFile.Default,
      NodeContext.layer
    )
    const write = (target, stream) =>
      Effect.runPromise(
        Effect.flatMap(AtomicFile, (atomic) => atomic.writeStream(target, stream)).pipe(
          Effect.provide(layer)
        )
      )
    await write(`${file}.warm`, Stream.make(new Uint8Array(16)))
    const before = process.resourceUsage().maxRSS
    const started = performance.now()
    // one chunk per pull (Stream.fromIterable would gather 4096 chunks into one)
    let next = 0
    await write(
      file,
      Stream.repeatEffectOption(
        Effect.suspend(() => next < chunks ? Effect.succeed(chunkAt(next++)) : Effect.fail(Option.none()))
      )
    )
    return { ms: performance.now() - started, before, after: process.resourceUsage().maxRSS }
  }
  const before = process.resourceUsage().maxRSS
  const started = performance.now()
  const temp = `${file}.raw-tmp`
  const out = createWriteStream(temp)
  for (let i = 0; i < chunks; i++) {
    if (!out.write(chunkAt(i))) await new Promise((resolve) => out.once("drain", resolve))
  }
  out.end()
  await finished(out)
  const handle = await fsp.open(temp, "r+")
  await handle.sync()
  await handle.close()
  await fsp.rename(temp, file)
  const directory = await fsp.open(dirname(file), "r")
  await directory.sync()
  await directory.close()
  return { ms: performance.now() - started, before, after: process.resourceUsage().maxRSS }
}

const result = await run()
const { size } = await fsp.stat(file)
process.stdout.write(JSON.stringify({ ...result, size }) + "\n")
