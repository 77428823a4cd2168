/**
 * @since 0.1.0
 */
export * as AtomicWrite from "./AtomicWrite.js"
/**
 * @since 0.1.0
 */
export * as IntentSessions from "./IntentSessions.js"
