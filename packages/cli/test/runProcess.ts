/**
 * Runs a child process without blocking the test worker. `spawnSync` stops
 * the worker's event loop for as long as the child runs; on a loaded machine
 * the worker then cannot answer vitest's RPC ("Timeout calling
 * onTaskUpdate") and the whole run fails, whatever the tests said.
 *
 * The result has the shape of `spawnSync`'s, and the options keep its
 * semantics: `input` is written to standard input, which is then closed
 * (empty input by default), and an output larger than `maxBuffer` kills the
 * child.
 */
import { spawn } from "node:child_process"
import type { Readable } from "node:stream"

export interface ProcessResult {
  /** the exit code, or null when a signal ended the process */
  readonly status: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

export interface ProcessOptions {
  /** written to standard input, which is then closed; empty by default */
  readonly input?: string | Buffer | undefined
  readonly cwd?: string | undefined
  /** added to the test process's environment */
  readonly env?: Record<string, string> | undefined
  readonly uid?: number | undefined
  /** the uid's number when not given */
  readonly gid?: number | undefined
  /** bytes allowed on stdout and on stderr each (64 MiB by default) */
  readonly maxBuffer?: number | undefined
}

export const runProcess = (
  command: string,
  args: ReadonlyArray<string>,
  options: ProcessOptions = {}
): Promise<ProcessResult> =>
  new Promise((resolve, reject) => {
    const maxBuffer = options.maxBuffer ?? 64 * 1024 * 1024
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: "pipe",
      ...(options.uid === undefined ? {} : { uid: options.uid, gid: options.gid ?? options.uid })
    })
    let failure: Error | undefined
    const fail = (error: Error) => {
      failure ??= error
      child.kill()
    }
    // Buffers joined at the end: a multi-byte character may span two chunks
    const collect = (stream: Readable, name: string) => {
      const chunks: Array<Buffer> = []
      let size = 0
      stream.on("data", (chunk: Buffer) => {
        size += chunk.length
        if (size > maxBuffer) fail(new Error(`${command}: more than ${maxBuffer} bytes on ${name}`))
        else chunks.push(chunk)
      })
      return () => Buffer.concat(chunks).toString()
    }
    const stdout = collect(child.stdout, "stdout")
    const stderr = collect(child.stderr, "stderr")
    // a command that exits without reading all of its input (a usage error)
    // closes the pipe: not a failure of the test, as with spawnSync
    child.stdin.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code !== "EPIPE") fail(error)
    })
    child.stdin.end(options.input ?? "")
    child.on("error", reject)
    child.on("close", (status, signal) => {
      if (failure !== undefined) reject(failure)
      else resolve({ status, signal, stdout: stdout(), stderr: stderr() })
    })
  })
