import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import type * as Scope from "effect/Scope"

/**
 * Runs effects that share a key one at a time, in the order they were
 * called; effects with different keys run in parallel.
 *
 * Effect's `Semaphore` is not used here: a fiber that calls `take` while
 * permits are free takes one at once, even if others are queued, so it does
 * not promise call order. Here each call, synchronously and before its first
 * asynchronous step, puts its own `Deferred` at the tail of the key's chain
 * and waits for the one before it: a strict FIFO.
 */
export interface KeyedQueue {
  /**
   * Waits for this key's turn (interruptibly) and holds it until the scope
   * closes. `guardWait` wraps the wait, only when there is one to make (for
   * instance with a timeout): an uncontended key costs no timer.
   */
  readonly acquire: <E = never>(
    key: string,
    guardWait?: (wait: Effect.Effect<void>) => Effect.Effect<void, E>
  ) => Effect.Effect<void, E, Scope.Scope>
  /** Runs `self` in this key's turn. */
  readonly run: (key: string) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

export const makeKeyedQueue = (): KeyedQueue => {
  const tails = new Map<string, Deferred.Deferred<void>>()

  const acquire = <E = never>(
    key: string,
    guardWait?: (wait: Effect.Effect<void>) => Effect.Effect<void, E>
  ): Effect.Effect<void, E, Scope.Scope> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        const mine = Deferred.unsafeMake<void>(FiberId.none)
        const previous = tails.get(key)
        tails.set(key, mine)
        const release = Effect.suspend(() => {
          if (tails.get(key) === mine) {
            tails.delete(key)
          }
          return Deferred.succeed(mine, undefined)
        })
        const wait: Effect.Effect<void, E> = previous === undefined
          ? Effect.void
          : restore(guardWait === undefined ? Deferred.await(previous) : guardWait(Deferred.await(previous))).pipe(
            Effect.onExit((exit) =>
              // Interrupted or timed out while waiting: the ones queued after
              // this call must still wait for the one before it, so pass the
              // turn on when that one finishes.
              Exit.isSuccess(exit) ? Effect.void : Effect.forkDaemon(Effect.zipRight(Deferred.await(previous), release))
            )
          )
        return Effect.zipRight(wait, Effect.addFinalizer(() => release))
      })
    )

  const run = (key: string) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.scoped(Effect.zipRight(acquire(key), self))

  return { acquire, run }
}
