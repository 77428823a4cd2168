import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Scope from "effect/Scope"

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
  /** Runs `self` in the ticket's turn (waiting for it interruptibly), then passes the turn on. */
  readonly runTicket: (ticket: Ticket) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

/**
 * A turn in a key's line: `done` once its holder passed it on; whoever waits
 * for it is called then. Lighter than a `Deferred`, which costs more to make
 * than an uncontended turn costs in all.
 */
export interface Turn {
  done: boolean
  readonly waiters: Array<() => void>
}

/** A place in a key's line: the turn before it, and how to pass the turn on. */
export interface Ticket {
  readonly previous: Turn | undefined
  readonly release: Effect.Effect<void>
}

const pass = (turn: Turn) => {
  turn.done = true
  const waiters = turn.waiters.splice(0)
  for (const wake of waiters) wake()
}

/** Waits until `turn` is done; interruptible, and then no longer waiting. */
const awaitTurn = (turn: Turn): Effect.Effect<void> =>
  Effect.suspend(() =>
    turn.done ? Effect.void : Effect.async<void>((resume) => {
      const wake = () => resume(Effect.void)
      turn.waiters.push(wake)
      return Effect.sync(() => {
        const index = turn.waiters.indexOf(wake)
        if (index !== -1) turn.waiters.splice(index, 1)
      })
    })
  )

export const makeKeyedQueue = (): KeyedQueue => {
  const tails = new Map<string, Turn>()

  const enter = (key: string): Ticket => {
    const mine: Turn = { done: false, waiters: [] }
    const previous = tails.get(key)
    tails.set(key, mine)
    const release = Effect.sync(() => {
      if (tails.get(key) === mine) {
        tails.delete(key)
      }
      pass(mine)
    })
    return { previous: previous === undefined || previous.done ? undefined : previous, release }
  }

  // runs uninterruptibly; `restore` makes the wait itself interruptible
  const waitTurn = <E>(
    restore: <A, E1, R>(effect: Effect.Effect<A, E1, R>) => Effect.Effect<A, E1, R>,
    { previous, release }: Ticket,
    guardWait?: (wait: Effect.Effect<void>) => Effect.Effect<void, E>
  ): Effect.Effect<void, E> =>
    previous === undefined
      ? Effect.void
      : restore(guardWait === undefined ? awaitTurn(previous) : guardWait(awaitTurn(previous))).pipe(
        Effect.onExit((exit) =>
          Effect.sync(() => {
            // Interrupted or timed out while waiting: the ones queued after
            // this call must still wait for the one before it, so pass the
            // turn on when that one finishes.
            if (Exit.isSuccess(exit)) return
            if (previous.done) Effect.runSync(release)
            else previous.waiters.push(() => Effect.runSync(release))
          })
        )
      )

  const holdMasked = <E>(
    restore: <A, E1, R>(effect: Effect.Effect<A, E1, R>) => Effect.Effect<A, E1, R>,
    ticket: Ticket,
    guardWait?: (wait: Effect.Effect<void>) => Effect.Effect<void, E>
  ): Effect.Effect<void, E, Scope.Scope> =>
    Effect.zipRight(waitTurn(restore, ticket, guardWait), Effect.addFinalizer(() => ticket.release))

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

  // no Scope: a finalizer costs more than the rest of a turn
  const runTicket = (ticket: Ticket) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.zipRight(waitTurn<never>(restore, ticket), Effect.ensuring(restore(self), ticket.release))
    )

  const run = (key: string) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.suspend(() => runTicket(enter(key))(self))

  return { enter, hold, isIdle: (key) => !tails.has(key), acquire, run, runTicket }
}
