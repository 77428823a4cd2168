/**
 * Temporary file names: `.<target name>~<pid>-<16 hex>#atomic-tmp`, in the
 * target's own directory (a rename within one directory never crosses file
 * systems). The leading dot hides it from `ls`; the pid lets `cleanupStale`
 * tell a crashed writer's file from a live one's; the random part makes
 * collisions negligible, and the exclusive create (`wx`) makes them harmless.
 * The `#` is there because `encodeURIComponent` never produces one: no key of
 * a file-per-key store (Effect's `KeyValueStore.layerFileSystem` encodes keys
 * that way) can ever be mistaken for a temporary file, or the reverse.
 */

const SUFFIX = "#atomic-tmp"
const NAME_MAX = 255
/** `.` + `~` + pid (at most 10 digits) + `-` + 16 hex + suffix */
const OVERHEAD = 1 + 1 + 10 + 1 + 16 + SUFFIX.length

const PATTERN = /^\.(.*)~(\d{1,10})-([0-9a-f]{16})#atomic-tmp$/s

const encoder = new TextEncoder()
const decoder = new TextDecoder("utf-8", { fatal: false })

/**
 * Cuts `name` to at most `maxBytes` bytes of UTF-8 without splitting a
 * character, so that the temporary name stays within NAME_MAX (255 bytes on
 * Linux ext4, xfs, btrfs, tmpfs) whatever the length of the target's name.
 */
export const truncateUtf8 = (name: string, maxBytes: number): string => {
  // a UTF-16 code unit is at most 3 bytes of UTF-8: most names need no encoding
  if (name.length * 3 <= maxBytes) {
    return name
  }
  const bytes = encoder.encode(name)
  if (bytes.length <= maxBytes) {
    return name
  }
  let end = maxBytes
  // step back over continuation bytes (10xxxxxx) to a character boundary
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) {
    end--
  }
  return decoder.decode(bytes.subarray(0, end))
}

// Random bytes drawn 4 KiB at a time: one `getRandomValues` per 512 names
// (a call costs more than the rest of the name).
const pool = new Uint8Array(4096)
let poolOffset = pool.length

const randomHex = (): string => {
  if (poolOffset + 8 > pool.length) {
    globalThis.crypto.getRandomValues(pool)
    poolOffset = 0
  }
  let out = ""
  for (let i = poolOffset; i < poolOffset + 8; i++) {
    out += (pool[i] ?? 0).toString(16).padStart(2, "0")
  }
  poolOffset += 8
  return out
}

/** A fresh temporary name for a target whose base name is `base`. */
export const makeTempName = (base: string, pid: number): string =>
  `.${truncateUtf8(base, NAME_MAX - OVERHEAD)}~${pid}-${randomHex()}${SUFFIX}`

/** The writer's pid if `name` is a temporary name of this library. */
export const parseTempName = (name: string): { readonly pid: number } | undefined => {
  const match = PATTERN.exec(name)
  return match === null ? undefined : { pid: Number(match[2]) }
}
