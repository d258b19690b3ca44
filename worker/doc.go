// Package worker is selfserve's background work on asynq (Redis): scheduled
// and requested syncs, customer imports from PSA connections, the expiry scan
// that plans due notices into the ledger, and the senders that deliver them.
//
// # Tour
//
//   - tasks.go: the task types (constants, in one place), their payloads and
//     constructors; each constructor sets the task's queue, timeout, retry
//     policy and task id.
//   - handlers.go: one handler struct per task type, holding its
//     dependencies, registered explicitly by NewServeMux.
//   - errors.go: errors are classified once, in the mux's middleware:
//     permanent failures (bad credentials, invalid configuration, a rejected
//     message, a bad payload, a vanished object) skip retries; throttling
//     (a connector's *connectors.RateLimitError, a provider's
//     *notify.ThrottledError) waits for its Retry-After without counting as a
//     failure; anything else retries with exponential backoff.
//   - scan.go: the expiry scan (Scanner): it writes to the ledger, and
//     queues, what package planner finds due, the plan the preview shows.
//   - send.go: one attempt at one ledger row (Sender); a channel that
//     panics is a failed attempt (*notify.ProviderPanicError), not a dead worker.
//   - enqueue.go: the narrow Client the admin API and the handlers enqueue
//     through; duplicates are "already queued", not errors.
//   - schedule.go: the periodic task manager's configuration, read from the
//     store.
//   - server.go, redis.go, metrics.go, logger.go: the worker servers, the
//     Redis connection (or the embedded in-process Redis), Prometheus
//     metrics, and asynq's logger on slog.
//
// # Queues
//
// notify_critical (lockout notices), notify (expiry and welcome notices,
// fan-out), scan (the expiry scan and the schedule ticks) and sync (syncs and
// customer imports). A worker runs two asynq servers: one serves sync alone,
// so that long syncs never hold every slot, the other serves the rest with
// weights notify_critical 6, notify 3, scan 1.
//
// # Once, and where "once" ends
//
// Each notice is a ledger row (end user, kind, occasion, channel), written
// before anything is sent; writing it again is a no-op, so the scan may run
// any number of times from any number of schedulers. Only the scan that
// created a row queues it (the scan also re-queues rows left pending for
// StrandedAfter, e.g. after Redis lost its data). Rows travel in send tasks
// of up to SendBatch rows; a row whose attempt in a batch fails for a
// temporary reason is retried alone under the task id "notice:<id>". The
// sender claims a row (pending → sending) in the database before it talks to
// the provider and marks it sent, failed or skipped right after; a claim
// younger than the lease is refused, so two attempts at a row never
// overlap, whichever tasks carry it.
//
// The duplicate window: a worker that dies after a provider accepted a
// message and before the ledger recorded it (a crash, a SIGKILL, the
// database unreachable at that instant) leaves the row "sending". asynq hands
// the task to another worker once the dead worker's lease has run out (about
// a minute); that attempt claims the row after the ledger lease (SendLease)
// and sends the message again. So an end user can receive a notice twice,
// and only when a process dies inside that window of a few milliseconds per
// message (the messages in flight at that instant: at most one per send slot
// and channel connection). Email repeats the same Message-ID
// (notice-<id>-email@<sender domain>), which lets mail systems fold the
// copy; SMS repeats the same Idempotency-Key header. Nothing is ever lost: a
// row is final only when sent, failed (with the reason) or skipped (with the
// reason). When asynq gives up on a send task (the last retry failed and it
// is archived), NoticeFinaliser, the servers' ErrorHandler, marks its rows
// still pending or sending failed with the last error.
//
// # At send time
//
// The sender checks again, with the domain rules at the send instant, that
// the end user is still served and the notice still due: a notice queued
// before the tenant override went OFF, before the end user changed the
// password, before the account was unlocked, or left in a queue past its
// local day, is marked skipped with the reason, not sent.
package worker
