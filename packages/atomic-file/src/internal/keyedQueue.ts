import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Scope from "effect/Scope"
import * as Outcome from "./outcome.js"

/**
 * Runs effects that share a key one at a time, in the order they were
 * called; effects with different keys run in parallel.
 *
 * Effect's `Semaphore` is not used here: a fiber that calls `take` while
 * permits are free takes one at once, even if others are queued, so it does
 * not promise call order. Here each call, synchronously and before its first
 * asynchronous step, puts its own `Turn` at the tail of the key's chain and
 * waits for the one before it: a strict FIFO.
 */
export interface KeyedQueue {
  /**
   * Takes a place at the tail of the key's line, synchronously, for a turn
   * that `runTicket` waits for later (possibly in another fiber). Every ticket
   * must be held, or its line stops.
   */
  readonly enter: (key: string) => Ticket
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
  /**
   * Runs `self` in the ticket's turn, then passes the turn on. To be run
   * uninterruptibly, from before the ticket was taken (so that no
   * interruption can come between taking it and holding it): the wait for
   * the turn and `self` run under `restore` (the `restore` of an
   * `uninterruptibleMask`, or `Effect.interruptible`).
   */
  readonly runTicket: (
    ticket: Ticket,
    restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  ) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

/**
 * A turn in a key's line: complete once its holder passed it on. An
 * `Outcome`, not a `Deferred`, which costs more to make than an uncontended
 * turn costs in all.
 */
export type Turn = Outcome.Outcome<void, never>

/** A place in a key's line: the turn before it, and how to pass the turn on. */
export interface Ticket {
  readonly previous: Turn | undefined
  /** Passes the turn on, now (for a holder that ends in a callback). */
  readonly pass: () => void
  /** `pass`, as an effect. */
  readonly release: Effect.Effect<void>
}

export const makeKeyedQueue = (): KeyedQueue => {
  const tails = new Map<string, Turn>()

  const enter = (key: string): Ticket => {
    const mine: Turn = Outcome.make()
    const previous = tails.get(key)
    tails.set(key, mine)
    const pass = () => {
      if (tails.get(key) === mine) {
        tails.delete(key)
      }
      mine.complete(Exit.void)
    }
    return {
      previous: previous === undefined || previous.exit !== undefined ? undefined : previous,
      pass,
      release: Effect.sync(pass)
    }
  }

  // runs uninterruptibly; `restore` makes the wait itself interruptible
  const waitTurn = <E>(
    restore: <A, E1, R>(effect: Effect.Effect<A, E1, R>) => Effect.Effect<A, E1, R>,
    { pass, previous }: Ticket,
    guardWait?: (wait: Effect.Effect<void>) => Effect.Effect<void, E>
  ): Effect.Effect<void, E> =>
    previous === undefined
      ? Effect.void
      : restore(guardWait === undefined ? previous.await() : guardWait(previous.await())).pipe(
        Effect.onExit((exit) =>
          Effect.sync(() => {
            // Interrupted or timed out while waiting: the ones queued after
            // this call must still wait for the one before it, so pass the
            // turn on when that one finishes.
            if (Exit.isFailure(exit)) previous.onComplete(pass)
          })
        )
      )

  const holdMasked = <E>(
    restore: <A, E1, R>(effect: Effect.Effect<A, E1, R>) => Effect.Effect<A, E1, R>,
    ticket: Ticket,
    guardWait?: (wait: Effect.Effect<void>) => Effect.Effect<void, E>
  ): Effect.Effect<void, E, Scope.Scope> =>
    Effect.zipRight(waitTurn(restore, ticket, guardWait), Effect.addFinalizer(() => ticket.release))

  const acquire = <E = never>(
    key: string,
    guardWait?: (wait: Effect.Effect<void>) => Effect.Effect<void, E>
  ): Effect.Effect<void, E, Scope.Scope> =>
    Effect.uninterruptibleMask((restore) => Effect.suspend(() => holdMasked(restore, enter(key), guardWait)))

  // no Scope: a finalizer costs more than the rest of a turn
  const runTicket = (
    ticket: Ticket,
    restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  ) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
    const held = Effect.ensuring(restore(self), ticket.release)
    return ticket.previous === undefined ? held : Effect.zipRight(waitTurn<never>(restore, ticket), held)
  }

  // the ticket is taken and held within one uninterruptible region
  const run = (key: string) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.uninterruptibleMask((restore) => Effect.suspend(() => runTicket(enter(key), restore)(self)))

  return { enter, isIdle: (key) => !tails.has(key), acquire, run, runTicket }
}
