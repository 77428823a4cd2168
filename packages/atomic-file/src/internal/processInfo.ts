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
 * The file mode creation mask. Node's `process.umask()` with no argument is
 * documented as deprecated (it briefly sets the mask to read it, a race with
 * threads that create files), but it is the only way to learn the mask
 * without touching the file system; the value is needed to give a new file
 * the mode a plain `open` would (0o666 minus umask).
 */
export const umask = (): number => {
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
