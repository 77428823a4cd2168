import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import type { KeyedQueue, Ticket } from "./keyedQueue.js"
import * as Outcome from "./outcome.js"

/**
 * Whole-file writes to one path, coalesced. A batch is one write; it takes
 * its content (`take`) only when its write starts filling the temporary
 * file, and until then any write to the same path with the same `key`
 * (operation and options) joins it: the batch then writes the content of the
 * latest call that joined, once, and every member returns when that write is
 * done, with its result. So each call returns only once its own content or
 * a newer one is written (durably, under durability "full").
 *
 * A write that finds its path idle starts its batch at once, in its own
 * fiber: the writes started at the same moment (by the fibers of one
 * `Effect.forEach`, say) join it while its first calls are in flight, and
 * the lot makes one write. A write that finds the path busy queues a batch
 * behind the running operations, run by a fiber of its own when its turn
 * comes, so that the interruption of one member does not stop the others'
 * write; when every member is interrupted, the batch is dropped before its
 * turn, or interrupted (and its temporary file removed) during it.
 *
 * When the caller that started a batch in its own fiber is interrupted, the
 * members that joined it write again: each one submits its content anew,
 * with its place in call order (`seq`): a batch keeps the content of its
 * latest call, so content written again never overtakes a newer one.
 */
export interface CoalescedWrites {
  /**
   * `run` writes the batch in an Effect. `start`, where given, writes it
   * with callbacks instead, for a write that finds its path idle: taking the
   * turn, writing and passing the turn on then cost one `Effect.async`
   * rather than an Effect operation per step (docs/NOTES.md, "Performance
   * findings").
   */
  readonly write: <E>(
    path: string,
    key: string,
    data: Uint8Array,
    run: (take: () => Uint8Array) => Effect.Effect<void, E>,
    start?: Start<E>
  ) => Effect.Effect<void, E>
  /**
   * Called, synchronously, by every other operation on `path` as it takes
   * its turn: a later write must not join a batch that started before it.
   */
  readonly barrier: (path: string) => void
}

/**
 * How a write started with callbacks ends: `Done`, with its result (the
 * turn is passed on and the members get the result at once) and what the
 * caller's fiber runs before returning it (`after`: logging, say); or
 * `More`, the work the caller's fiber goes on with in the path's turn (the
 * Effect path, for a case the callbacks do not take).
 */
export type Ending<E> =
  | { readonly _tag: "Done"; readonly exit: Exit.Exit<void, E>; readonly after: Effect.Effect<void> | undefined }
  | { readonly _tag: "More"; readonly effect: Effect.Effect<void, E> }

/** A write in flight with callbacks. */
export interface Started {
  /**
   * Stops the write at its next step (if it has not committed) and calls
   * `onStopped` once nothing of it is in flight, with what the interrupted
   * fiber runs before it ends (logging, say).
   */
  readonly interrupt: (onStopped: (after: Effect.Effect<void>) => void) => void
}

/** Starts a write with callbacks: `onEnd` is called once, unless the write is interrupted. */
export type Start<E> = (take: () => Uint8Array, onEnd: (ending: Ending<E>) => void) => Started

interface Batch<E> {
  readonly key: string
  data: Uint8Array
  /** the call order of `data`'s call */
  seq: number
  /** the write's result, which the members wait for */
  readonly outcome: Outcome.Outcome<void, E>
  waiting: number
  /** "open": joinable, content not taken yet */
  state: "open" | "taken" | "cancelled"
  /** the fiber of a batch queued behind others; `undefined` for one run by its caller */
  runner: Fiber.RuntimeFiber<void> | undefined
}

export const makeCoalescedWrites = (queue: KeyedQueue): CoalescedWrites => {
  // path → the path's open batch, if any
  // (the type parameter E is erased: each path's batches share one caller type)
  const open = new Map<string, Batch<unknown>>()
  let calls = 0

  const barrier = (path: string) => {
    open.delete(path)
  }

  const close = <E>(path: string, batch: Batch<E>) => {
    if (open.get(path) === batch) open.delete(path)
  }

  const takeFrom = <E>(path: string, batch: Batch<E>) => (): Uint8Array => {
    close(path, batch)
    if (batch.state === "open") batch.state = "taken"
    return batch.data
  }

  /** The batch's write is over: its members get its result. */
  const complete = <E>(path: string, batch: Batch<E>, exit: Exit.Exit<void, E>) => {
    close(path, batch)
    batch.outcome.complete(exit)
  }

  const finish = <E>(path: string, batch: Batch<E>) => (exit: Exit.Exit<void, E>): Effect.Effect<void> =>
    Effect.sync(() => complete(path, batch, exit))

  const leave = <E>(path: string, batch: Batch<E>): Effect.Effect<void> =>
    Effect.suspend(() => {
      batch.waiting--
      if (batch.waiting > 0 || batch.runner === undefined) return Effect.void
      // nobody waits for it any more: dropped (its temporary file removed)
      if (batch.state === "open") {
        batch.state = "cancelled"
        close(path, batch)
      }
      return Effect.asVoid(Fiber.interrupt(batch.runner))
    })

  /**
   * Joins `batch`, now: called in the very step that found it open (or made
   * it), in `submit`'s uninterruptible region, so that nothing can take the
   * batch's content between that check and this call's content going in.
   * Only the wait is interruptible (`restore`); an interrupted member leaves
   * the batch. A member of a batch whose caller was interrupted writes again
   * (see above).
   */
  const join = <E>(
    restore: <A, E1, R>(effect: Effect.Effect<A, E1, R>) => Effect.Effect<A, E1, R>,
    path: string,
    key: string,
    batch: Batch<E>,
    data: Uint8Array,
    seq: number,
    run: (take: () => Uint8Array) => Effect.Effect<void, E>
  ): Effect.Effect<void, E> => {
    if (seq > batch.seq) {
      batch.data = data
      batch.seq = seq
    }
    batch.waiting++
    return Effect.matchCauseEffect(restore(batch.outcome.await()), {
      onSuccess: () => Effect.void,
      onFailure: (cause) => {
        const ended = batch.outcome.exit
        // not over: this member was interrupted while it waited
        if (ended === undefined) return Effect.zipRight(leave(path, batch), Effect.failCause(cause))
        return batch.runner === undefined && Exit.isInterrupted(ended)
          ? restore(submit(path, key, data, seq, run))
          : Effect.failCause(cause)
      }
    })
  }

  // the batch's write, in a fiber of its own: members can come and go. The
  // fiber starts uninterruptible (forked in an uninterruptible region), so
  // that it holds its ticket before an interruption can stop it.
  const startRunner = <E>(
    path: string,
    batch: Batch<E>,
    ticket: Ticket,
    run: (take: () => Uint8Array) => Effect.Effect<void, E>
  ): Effect.Effect<void> => {
    const runner = queue.runTicket(ticket, Effect.interruptible)(
      Effect.suspend(() => batch.state === "cancelled" ? Effect.void : run(takeFrom(path, batch)))
    ).pipe(Effect.onExit(finish(path, batch)), Effect.ignore)
    return Effect.map(Effect.uninterruptible(Effect.forkDaemon(runner)), (fiber) => {
      batch.runner = fiber
    })
  }

  const newBatch = <E>(path: string, key: string, data: Uint8Array, seq: number): Batch<E> => {
    const batch: Batch<E> = {
      key,
      data,
      seq,
      outcome: Outcome.make(),
      waiting: 0,
      state: "open",
      runner: undefined
    }
    open.set(path, batch as Batch<unknown>)
    return batch
  }

  /**
   * The write of a batch started with callbacks, by a caller that found its
   * path idle and took the batch and the turn in the same step (`submit`).
   * `settle` passes the turn on and gives the members their result, once,
   * whichever way the write ends.
   */
  const startBatch = <E>(
    restore: <A, E1, R>(effect: Effect.Effect<A, E1, R>) => Effect.Effect<A, E1, R>,
    path: string,
    batch: Batch<E>,
    ticket: Ticket,
    start: Start<E>
  ): Effect.Effect<void, E> => {
    // "more": the caller's fiber goes on in the turn
    let state: "running" | "more" | "settled" = "running"
    const settle = (exit: Exit.Exit<void, E>) => {
      if (state === "settled") return
      state = "settled"
      ticket.pass()
      complete(path, batch, exit)
    }
    const started = Effect.async<Effect.Effect<void, E>>((resume) => {
      const running = start(takeFrom(path, batch), (ending) => {
        if (ending._tag === "More") {
          state = "more"
          return resume(Effect.succeed(
            Effect.onExit(restore(ending.effect), (exit) => Effect.sync(() => settle(exit)))
          ))
        }
        settle(ending.exit)
        resume(
          Effect.succeed(ending.after === undefined ? ending.exit : Effect.zipRight(ending.after, ending.exit))
        )
      })
      return Effect.async<void>((resumeStopped) =>
        running.interrupt((after) => {
          settle(Exit.interrupt(FiberId.none))
          resumeStopped(after)
        })
      )
    })
    return Effect.matchCauseEffect(restore(started), {
      onSuccess: (next) => next,
      // interrupted before the write started or after it ended (or a defect
      // in `start`): the turn is passed on all the same
      onFailure: (cause) => {
        settle(Exit.failCause(cause))
        return Effect.failCause(cause)
      }
    })
  }

  /**
   * One step, uninterruptible, decides what the call does and takes it:
   * joins the path's open batch, or makes a batch and takes its place in
   * the path's line. Another fiber can run between two steps of this one
   * (the runtime yields every so many operations), so the check and what
   * it decides must not be two steps.
   */
  const submit = <E>(
    path: string,
    key: string,
    data: Uint8Array,
    seq: number | undefined,
    run: (take: () => Uint8Array) => Effect.Effect<void, E>,
    start?: Start<E>
  ): Effect.Effect<void, E> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        const order = seq ?? ++calls
        const last = open.get(path) as Batch<E> | undefined
        if (last !== undefined && last.key === key && last.state === "open") {
          return join(restore, path, key, last, data, order, run)
        }
        const idle = queue.isIdle(path)
        const batch = newBatch<E>(path, key, data, order)
        // the place in the line is taken now, in call order
        const ticket = queue.enter(path)
        if (!idle) {
          return Effect.zipRight(
            startRunner(path, batch, ticket, run),
            join(restore, path, key, batch, data, order, run)
          )
        }
        if (start !== undefined) return startBatch(restore, path, batch, ticket, start)
        // the caller's own fiber writes, and hands its result to those who joined
        return Effect.onExit(queue.runTicket(ticket, restore)(run(takeFrom(path, batch))), finish(path, batch))
      })
    )

  const write = <E>(
    path: string,
    key: string,
    data: Uint8Array,
    run: (take: () => Uint8Array) => Effect.Effect<void, E>,
    start?: Start<E>
  ): Effect.Effect<void, E> => submit(path, key, data, undefined, run, start)

  return { write, barrier }
}
