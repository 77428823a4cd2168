/**
 * @since 0.1.0
 */
export * as SqlSessionStorage from "./SqlSessionStorage.js"
