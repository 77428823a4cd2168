import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type { KeyedQueue, Ticket } from "./keyedQueue.js"
import * as Outcome from "./outcome.js"

/**
 * Whole-file writes to one path, coalesced. A write that finds its path busy
 * joins the batch queued behind the running operations, if that batch is
 * the last in the path's line and has the same `key` (operation and
 * options); else it queues a new batch. A batch, when its turn comes, writes
 * the content of the last call that joined it, once: every member returns
 * when that write is done, with its result. So each call returns only once
 * its own content or a newer one is written (durably, under durability
 * "full").
 *
 * A write that finds its path idle opens a batch too, and yields once before
 * it starts, so that the writes started at the same moment (by the fibers
 * of one `Effect.forEach`, say) join it: they all make one write, not two.
 * When no one joined, it writes in the caller's fiber.
 *
 * A batch runs in a fiber of its own, so that the interruption of one member
 * does not stop the others' write; when every member is interrupted, the
 * batch is dropped before its turn, or interrupted (and its temporary file
 * removed) during it.
 */
export interface CoalescedWrites {
  readonly write: <E>(
    path: string,
    key: string,
    data: Uint8Array,
    run: (data: Uint8Array) => Effect.Effect<void, E>
  ) => Effect.Effect<void, E>
  /**
   * Called, synchronously, by every other operation on `path` as it takes
   * its turn: a later write must not join a batch queued before it.
   */
  readonly barrier: (path: string) => void
}

interface Batch<E> {
  readonly key: string
  data: Uint8Array
  /** the write's result, which the members wait for */
  readonly outcome: Outcome.Outcome<void, E>
  waiting: number
  state: "queued" | "running" | "cancelled"
  runner: Fiber.RuntimeFiber<void> | undefined
}

export const makeCoalescedWrites = (queue: KeyedQueue): CoalescedWrites => {
  // path → the batch at the tail of the path's line, not started yet
  // (the type parameter E is erased: each path's batches share one caller type)
  const queued = new Map<string, Batch<unknown>>()

  const barrier = (path: string) => {
    queued.delete(path)
  }

  const leave = <E>(path: string, batch: Batch<E>): Effect.Effect<void> =>
    Effect.suspend(() => {
      batch.waiting--
      if (batch.waiting > 0) return Effect.void
      if (batch.state === "queued") {
        batch.state = "cancelled"
        if (queued.get(path) === batch) queued.delete(path)
        return Effect.void
      }
      return batch.state === "running" && batch.runner !== undefined
        ? Effect.asVoid(Fiber.interrupt(batch.runner))
        : Effect.void
    })

  // interruptible; an interrupted member leaves the batch
  const join = <E>(path: string, batch: Batch<E>): Effect.Effect<void, E> =>
    Effect.suspend(() => {
      batch.waiting++
      return batch.outcome.await(leave(path, batch))
    })

  // the batch's write, in a fiber of its own: members can come and go
  const startRunner = <E>(
    path: string,
    batch: Batch<E>,
    ticket: Ticket,
    run: (data: Uint8Array) => Effect.Effect<void, E>
  ): Effect.Effect<void> => {
    const runner = queue.runTicket(ticket)(
      Effect.suspend(() => {
        if (queued.get(path) === batch) queued.delete(path)
        if (batch.state === "cancelled") return Effect.void
        batch.state = "running"
        return run(batch.data)
      })
    ).pipe(
      Effect.exit,
      Effect.flatMap((exit) => Effect.sync(() => batch.outcome.complete(exit)))
    )
    return Effect.map(Effect.forkDaemon(runner), (fiber) => {
      batch.runner = fiber
    })
  }

  const write = <E>(
    path: string,
    key: string,
    data: Uint8Array,
    run: (data: Uint8Array) => Effect.Effect<void, E>
  ): Effect.Effect<void, E> =>
    Effect.suspend(() => {
      const last = queued.get(path) as Batch<E> | undefined
      if (last !== undefined && last.key === key && last.state === "queued") {
        last.data = data
        return join(path, last)
      }
      const idle = queue.isIdle(path)
      const batch: Batch<E> = {
        key,
        data,
        outcome: Outcome.make(),
        waiting: 0,
        state: "queued",
        runner: undefined
      }
      queued.set(path, batch as Batch<unknown>)
      // the place in the line is taken now, in call order
      const ticket = queue.enter(path)
      if (!idle) {
        return Effect.zipRight(startRunner(path, batch, ticket, run), join(path, batch))
      }
      // One yield for the writes started at the same moment to join; not
      // interruptible, since the ticket must be held or passed on.
      return Effect.uninterruptibleMask((restore) =>
        Effect.zipRight(
          Effect.yieldNow(),
          Effect.suspend(() => {
            if (batch.waiting > 0) {
              return Effect.zipRight(startRunner(path, batch, ticket, run), restore(join(path, batch)))
            }
            // no one joined: this call's own write, in its own fiber
            if (queued.get(path) === batch) queued.delete(path)
            batch.state = "running"
            return restore(queue.runTicket(ticket)(run(data)))
          })
        )
      )
    })

  return { write, barrier }
}
