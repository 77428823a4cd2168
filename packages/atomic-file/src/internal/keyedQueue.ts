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
   * Takes a place at the tail of the key's line, synchronously, for a turn
   * that `hold` waits for later (possibly in another fiber). Every ticket
   * must be held, or its line stops.
   */
  readonly enter: (key: string) => Ticket
  /** Waits for the ticket's turn (interruptibly) and holds it until the scope closes. */
  readonly hold: <E = never>(
    ticket: Ticket,
    guardWait?: (wait: Effect.Effect<void>) => Effect.Effect<void, E>
  ) => Effect.Effect<void, E, Scope.Scope>
  /** Whether no call holds or waits for this key's turn. */
  readonly isIdle: (key: string) => boolean
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

/** A place in a key's line: the turn before it, and how to pass the turn on. */
export interface Ticket {
  readonly previous: Deferred.Deferred<void> | undefined
  readonly release: Effect.Effect<void>
}

export const makeKeyedQueue = (): KeyedQueue => {
  const tails = new Map<string, Deferred.Deferred<void>>()

  const enter = (key: string): Ticket => {
    const mine = Deferred.unsafeMake<void>(FiberId.none)
    const previous = tails.get(key)
    tails.set(key, mine)
    const release = Effect.suspend(() => {
      if (tails.get(key) === mine) {
        tails.delete(key)
      }
      return Deferred.succeed(mine, undefined)
    })
    return { previous, release }
  }

  // runs uninterruptibly; `restore` makes the wait itself interruptible
  const holdMasked = <E>(
    restore: <A, E1, R>(effect: Effect.Effect<A, E1, R>) => Effect.Effect<A, E1, R>,
    { previous, release }: Ticket,
    guardWait?: (wait: Effect.Effect<void>) => Effect.Effect<void, E>
  ): Effect.Effect<void, E, Scope.Scope> => {
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
  }

  const hold = <E = never>(
    ticket: Ticket,
    guardWait?: (wait: Effect.Effect<void>) => Effect.Effect<void, E>
  ): Effect.Effect<void, E, Scope.Scope> =>
    Effect.uninterruptibleMask((restore) => holdMasked(restore, ticket, guardWait))

  const acquire = <E = never>(
    key: string,
    guardWait?: (wait: Effect.Effect<void>) => Effect.Effect<void, E>
  ): Effect.Effect<void, E, Scope.Scope> =>
    Effect.uninterruptibleMask((restore) => Effect.suspend(() => holdMasked(restore, enter(key), guardWait)))

  const run = (key: string) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.scoped(Effect.zipRight(acquire(key), self))

  return { enter, hold, isIdle: (key) => !tails.has(key), acquire, run }
}
