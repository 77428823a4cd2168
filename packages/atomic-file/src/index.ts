/**
 * @since 0.1.0
 */
export * as AtomicFile from "./AtomicFile.js"
/**
 * @since 0.1.0
 */
export * as AtomicFileError from "./AtomicFileError.js"
/**
 * @since 0.1.0
 */
export * as FileLock from "./FileLock.js"
/**
 * @since 0.1.0
 */
export * as AtomicKeyValueStore from "./AtomicKeyValueStore.js"
