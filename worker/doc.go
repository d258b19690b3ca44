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
//   - scan.go: the expiry scan (Scanner).
//   - send.go: one attempt at one ledger row (Sender).
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
// any number of times from any number of schedulers. Only the run that
// created a row enqueues it (the scan also re-queues rows left pending for
// StrandedAfter, e.g. after Redis lost its data), under the task id
// "notice:<id>", so a row has at most one send task at a time. The sender
// claims the row (pending → sending) before it talks to the provider and
// marks it sent, failed or skipped after; a claim younger than the lease is
// refused, so two attempts never overlap.
//
// The duplicate window: a worker that dies after the provider accepted a
// message and before the ledger recorded it (a crash, a SIGKILL, the database
// unreachable at that instant) leaves the row "sending". asynq hands the task
// to another worker once the dead worker's lease runs out (about 30 seconds);
// that attempt claims the row after the ledger lease (SendLease) and sends
// the message again. So an end user can receive one duplicate of a notice,
// and only when a process dies inside that window of a few milliseconds per
// message. Email repeats the same Message-ID (notice-<id>-email@<sender
// domain>), which lets mail systems fold the copy. Nothing is ever lost: a
// row is final only when sent, failed (with the reason) or skipped (with the
// reason).
//
// # At send time
//
// The sender checks again, with the domain rules at the send instant, that
// the end user is still served and the notice still due: a notice queued
// before the tenant override went OFF, before the end user changed the
// password, before the account was unlocked, or left in a queue past its
// local day, is marked skipped with the reason, not sent.
package worker
