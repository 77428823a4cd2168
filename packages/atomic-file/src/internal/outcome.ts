/**
 * An outcome set once, that fibers and callbacks wait for: a lighter
 * `Deferred` (making a `Deferred` costs more than an uncontended turn of the
 * keyed queue costs in all). Used for the queue's turns, the coalesced
 * batches, and the Node handles' calls started ahead.
 */
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"

export interface Outcome<A, E> {
  /** `undefined` until `complete` */
  readonly exit: Exit.Exit<A, E> | undefined
  /** Sets the outcome (the first call wins) and calls every waiter. */
  readonly complete: (exit: Exit.Exit<A, E>) => void
  /** Calls `callback` with the outcome, now if it is set. */
  readonly onComplete: (callback: (exit: Exit.Exit<A, E>) => void) => void
  /**
   * Waits for the outcome. Interruptible: an interrupted waiter is no longer
   * called, and `onLeave` (if given) is what its interruption runs.
   */
  readonly await: (onLeave?: Effect.Effect<void>) => Effect.Effect<A, E>
}

export const make = <A, E = never>(): Outcome<A, E> => {
  let exit: Exit.Exit<A, E> | undefined
  const waiters: Array<(exit: Exit.Exit<A, E>) => void> = []
  const onComplete = (callback: (exit: Exit.Exit<A, E>) => void) => {
    if (exit === undefined) waiters.push(callback)
    else callback(exit)
  }
  return {
    get exit() {
      return exit
    },
    complete: (value) => {
      if (exit !== undefined) return
      exit = value
      for (const wake of waiters.splice(0)) wake(value)
    },
    onComplete,
    await: (onLeave) =>
      Effect.suspend(() =>
        exit ?? Effect.async<A, E>((resume) => {
          // checked again here: the runtime may have run other fibers (and
          // set the outcome) between the step above and this one; a waiter
          // pushed after `complete` would never be called
          if (exit !== undefined) return resume(exit)
          waiters.push(resume)
          return Effect.suspend(() => {
            const index = waiters.indexOf(resume)
            if (index !== -1) waiters.splice(index, 1)
            return onLeave ?? Effect.void
          })
        })
      )
  }
}
