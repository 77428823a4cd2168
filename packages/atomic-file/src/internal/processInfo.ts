/**
 * What the write algorithm needs to know about the running process. Read
 * through `globalThis.process` so that the library loads on any runtime; where
 * there is no process object, the values fall back to safe defaults.
 */

interface ProcessLike {
  readonly pid?: number
  readonly umask?: () => number
  readonly geteuid?: () => number
  readonly getegid?: () => number
  readonly kill?: (pid: number, signal: number) => boolean
}

const current = (): ProcessLike | undefined => (globalThis as { process?: ProcessLike }).process

export const processId = (): number => current()?.pid ?? 0

/**
 * The file mode creation mask, from `status`, the text of /proc/self/status
 * (its `Umask:` line, Linux 4.7 and later: read without changing the mask),
 * or `undefined` where that could not be read. Only then Node's
 * `process.umask()`: with no argument it sets the mask to 0 for a moment to
 * read it, and a file another thread creates in that moment gets every
 * permission bit (Node deprecates the call for this race, DEP0139).
 *
 * So AtomicFile reads the mask once, when its layer is built, never per
 * write: with creates in flight on the thread pool, reading it per write
 * gave 4 or 5 new files in 8,000 mode 0o666 instead of 0o644
 * (test/reliability/newFileModes.test.ts).
 */
export const umaskOf = (status: string | undefined): number => {
  const line = status === undefined ? null : /^Umask:\s*([0-7]+)\s*$/m.exec(status)
  if (line?.[1] !== undefined) return parseInt(line[1], 8)
  const proc = current()
  return proc?.umask === undefined ? 0o022 : proc.umask()
}

export const effectiveIds = (): { readonly uid: number; readonly gid: number } | undefined => {
  const proc = current()
  return proc?.geteuid === undefined || proc.getegid === undefined
    ? undefined
    : { uid: proc.geteuid(), gid: proc.getegid() }
}

/**
 * Whether a process with this pid exists on this machine. `kill(pid, 0)`
 * sends nothing: ESRCH means no such process, EPERM means it exists but is
 * someone else's.
 */
export const isProcessAlive = (pid: number): boolean => {
  const proc = current()
  if (proc?.kill === undefined) {
    return true
  }
  try {
    proc.kill(pid, 0)
    return true
  } catch (error) {
    return (error as { code?: string }).code === "EPERM"
  }
}
