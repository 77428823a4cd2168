/**
 * @since 0.1.0
 */
export * as InterviewSession from "./InterviewSession.js"
/**
 * @since 0.1.0
 */
export * as SessionStorage from "./SessionStorage.js"
/**
 * @since 0.1.0
 */
export * as SessionStorageError from "./SessionStorageError.js"
