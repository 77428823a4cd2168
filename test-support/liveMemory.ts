/**
 * Live memory of this process for memory tests: bytes still reachable after
 * two full garbage collections (ArrayBuffer memory is released lazily after
 * one), JavaScript heap and Buffers together. V8's collector is reached
 * without starting node with --expose-gc.
 */
import * as v8 from "node:v8"
import * as vm from "node:vm"

let gc: (() => void) | undefined

export const liveMemory = (): number => {
  if (gc === undefined) {
    v8.setFlagsFromString("--expose-gc")
    gc = vm.runInNewContext("gc") as () => void
  }
  gc()
  gc()
  const usage = process.memoryUsage()
  return usage.heapUsed + usage.arrayBuffers
}
