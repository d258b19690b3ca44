package worker

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// Queue names.
const (
	QueueCritical = "notify_critical"
	QueueNotify   = "notify"
	QueueScan     = "scan"
	QueueSync     = "sync"
)

// NotifyQueues are the queues (and weights) of the notify server: lockouts
// first, then the other notices, then the scan and schedule ticks.
func NotifyQueues() map[string]int {
	return map[string]int{QueueCritical: 6, QueueNotify: 3, QueueScan: 1}
}

// SyncQueues are the queues of the sync server.
func SyncQueues() map[string]int { return map[string]int{QueueSync: 1} }

// Task types. They are stable names stored in Redis: rename only with an
// alias period. asynq's mux matches the longest prefix, so no type is a
// prefix of another.
const (
	// TypeSync syncs a directory connection for a run row (SyncPayload).
	TypeSync = "sync:run"
	// TypeScheduledSync is a schedule tick: it records a run of a
	// connection and queues its sync or customer import (ScheduledSyncPayload).
	TypeScheduledSync = "schedule:sync"
	// TypeCustomerImport imports customers from a PSA connection for a run
	// row (SyncPayload).
	TypeCustomerImport = "psa:customers"
	// TypeScan is the expiry scan (empty payload).
	TypeScan = "scan:expiry"
	// TypeRequeue queues the ledger rows left pending or sending again
	// (empty payload): after Redis lost its queues, they go out within
	// minutes instead of at the next hourly scan.
	TypeRequeue = "scan:stranded"
	// TypeDispatch fans a batch of ledger rows out into send tasks
	// (DispatchPayload).
	TypeDispatch = "notice:dispatch"
	// TypeSend sends one ledger row (SendPayload).
	TypeSend = "notice:send"
	// TypeLockout records the lockout notices of one lockout
	// (LockoutPayload).
	TypeLockout = "notice:lockout"
	// TypeWelcome records and sends a welcome email (WelcomePayload).
	TypeWelcome = "notice:welcome"
)

// Task defaults: retries, timeouts and how long a finished task (and so its
// id) is kept.
const (
	syncMaxRetry     = 8
	syncTimeout      = 2 * time.Hour
	syncRetention    = time.Hour
	tickMaxRetry     = 3
	tickTimeout      = time.Minute
	scanMaxRetry     = 3
	scanTimeout      = 10 * time.Minute
	scanRetention    = 30 * time.Minute
	dispatchMaxRetry = 20
	dispatchTimeout  = 5 * time.Minute
	sendMaxRetry     = 8
	sendTimeout      = time.Minute
	sendRetention    = time.Hour
	eventMaxRetry    = 10
	eventTimeout     = time.Minute
	eventRetention   = time.Hour
)

// SendLease is how long a claimed ledger row stays reserved for its attempt:
// longer than a send task (a batch included) may run, so attempts never
// overlap.
const SendLease = sendTimeout + 30*time.Second

// errBadPayload marks a task that cannot be decoded or names nothing: it is
// not retried.
var errBadPayload = errors.New("bad task payload")

// SyncPayload names a run of a connection: a directory sync (TypeSync) or a
// customer import (TypeCustomerImport).
type SyncPayload struct {
	TenantID     int64 `json:"tenant_id"`
	ConnectionID int64 `json:"connection_id"`
	RunID        int64 `json:"run_id"`
}

// ScheduledSyncPayload names a connection whose schedule fired.
type ScheduledSyncPayload struct {
	TenantID     int64 `json:"tenant_id"`
	ConnectionID int64 `json:"connection_id"`
}

// DispatchPayload lists ledger rows to queue for sending.
type DispatchPayload struct {
	Notices []NoticeRef `json:"notices"`
}

// NoticeRef is a ledger row in a payload.
type NoticeRef struct {
	TenantID int64 `json:"tenant_id"`
	ID       int64 `json:"id"`
	// EndUserID lets the sender read the end user while it claims the row
	// (0: after).
	EndUserID int64            `json:"end_user_id,omitempty"`
	Kind      rules.NoticeKind `json:"kind"`
}

// SendPayload lists the ledger rows a send task attempts: one, or a batch
// of up to SendBatch fanned out by a dispatch task.
type SendPayload struct {
	Notices []NoticeRef `json:"notices"`
}

// LockoutPayload is one lockout an import saw.
type LockoutPayload struct {
	TenantID    int64     `json:"tenant_id"`
	EndUserID   int64     `json:"end_user_id"`
	LockedOutAt time.Time `json:"locked_out_at"`
}

// WelcomePayload is one welcome email a technician asked for; Occasion (the
// request's minute, RFC 3339) keys it in the ledger.
type WelcomePayload struct {
	TenantID  int64  `json:"tenant_id"`
	EndUserID int64  `json:"end_user_id"`
	Occasion  string `json:"occasion"`
}

func newTask(typ string, payload any, opts ...asynq.Option) (*asynq.Task, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("%s task: %w", typ, err)
	}
	return asynq.NewTask(typ, b, opts...), nil
}

// decode reads a task's payload into v, strictly.
func decode(t *asynq.Task, v any) error {
	if err := json.Unmarshal(t.Payload(), v); err != nil {
		return fmt.Errorf("%s: %w: %v", t.Type(), errBadPayload, err)
	}
	return nil
}

// NewSyncTask is the sync of a directory connection for run (a run row
// recorded as queued). Its task id "run:<id>" enqueues a run once.
func NewSyncTask(run store.SyncRun) (*asynq.Task, error) {
	if run.ID == 0 || run.TenantID == 0 || run.ConnectionID == 0 {
		return nil, fmt.Errorf("sync task: %w: run %d of connection %d", errBadPayload, run.ID, run.ConnectionID)
	}
	return newTask(TypeSync, SyncPayload{TenantID: run.TenantID, ConnectionID: run.ConnectionID, RunID: run.ID},
		asynq.Queue(QueueSync), asynq.TaskID(runTaskID(run.ID)), asynq.MaxRetry(syncMaxRetry), asynq.Timeout(syncTimeout), asynq.Retention(syncRetention))
}

// NewCustomerImportTask is the customer import of a PSA connection for run.
// Its task id "run:<id>" enqueues a run once.
func NewCustomerImportTask(run store.SyncRun) (*asynq.Task, error) {
	if run.ID == 0 || run.TenantID == 0 || run.ConnectionID == 0 {
		return nil, fmt.Errorf("customer import task: %w: run %d of connection %d", errBadPayload, run.ID, run.ConnectionID)
	}
	return newTask(TypeCustomerImport, SyncPayload{TenantID: run.TenantID, ConnectionID: run.ConnectionID, RunID: run.ID},
		asynq.Queue(QueueSync), asynq.TaskID(runTaskID(run.ID)), asynq.MaxRetry(syncMaxRetry), asynq.Timeout(syncTimeout), asynq.Retention(syncRetention))
}

func runTaskID(runID int64) string { return "run:" + strconv.FormatInt(runID, 10) }

// NewScheduledSyncTask is the schedule tick of a connection synced every
// interval. Its fixed task id "schedule:<connection>" with a retention of
// half the interval makes every scheduler replica but the first one to fire
// find the id taken (asynq.ErrTaskIDConflict), so each occurrence enqueues
// once.
func NewScheduledSyncTask(conn store.Connection, interval time.Duration) (*asynq.Task, []asynq.Option, error) {
	if conn.ID == 0 || conn.TenantID == 0 {
		return nil, nil, fmt.Errorf("scheduled sync task: %w: connection %d", errBadPayload, conn.ID)
	}
	opts := []asynq.Option{asynq.Queue(QueueScan), asynq.TaskID("schedule:" + strconv.FormatInt(conn.ID, 10)),
		asynq.MaxRetry(tickMaxRetry), asynq.Timeout(tickTimeout), asynq.Retention(tickRetention(interval))}
	t, err := newTask(TypeScheduledSync, ScheduledSyncPayload{TenantID: conn.TenantID, ConnectionID: conn.ID})
	return t, opts, err
}

// tickRetention is half the interval, at least a second and at most an
// hour.
func tickRetention(interval time.Duration) time.Duration {
	return min(max(interval/2, time.Second), time.Hour)
}

// NewScanTask is the expiry scan. Its fixed task id "scan:expiry" with a
// retention of 30 minutes lets each hourly occurrence enqueue once whatever
// the number of scheduler replicas.
func NewScanTask() (*asynq.Task, []asynq.Option) {
	return asynq.NewTask(TypeScan, []byte("{}")), []asynq.Option{asynq.Queue(QueueScan), asynq.TaskID(TypeScan),
		asynq.MaxRetry(scanMaxRetry), asynq.Timeout(scanTimeout), asynq.Retention(scanRetention)}
}

// NewRequeueTask queues the stranded ledger rows again. Its fixed task id
// "scan:stranded" with a retention of a minute lets each occurrence (every
// five minutes) enqueue once whatever the number of scheduler replicas.
func NewRequeueTask() (*asynq.Task, []asynq.Option) {
	return asynq.NewTask(TypeRequeue, []byte("{}")), []asynq.Option{asynq.Queue(QueueScan), asynq.TaskID(TypeRequeue),
		asynq.MaxRetry(scanMaxRetry), asynq.Timeout(scanTimeout), asynq.Retention(time.Minute)}
}

// NewDispatchTask fans refs out into send tasks; queue is QueueCritical for
// lockout notices, QueueNotify otherwise.
func NewDispatchTask(refs []NoticeRef, queue string) (*asynq.Task, error) {
	if len(refs) == 0 {
		return nil, fmt.Errorf("dispatch task: %w: no notices", errBadPayload)
	}
	return newTask(TypeDispatch, DispatchPayload{Notices: refs}, asynq.Queue(queue), asynq.MaxRetry(dispatchMaxRetry), asynq.Timeout(dispatchTimeout))
}

// NewSendTask sends one ledger row. Its task id "notice:<id>" keeps a row to
// one single send task at a time; lockout notices go to QueueCritical.
// retries is its number of retries (sendMaxRetry for a fresh notice, one
// fewer for a notice whose first attempt was in a batch).
func NewSendTask(ref NoticeRef, retries int) (*asynq.Task, error) {
	if ref.ID == 0 || ref.TenantID == 0 {
		return nil, fmt.Errorf("send task: %w: notice %d", errBadPayload, ref.ID)
	}
	return newTask(TypeSend, SendPayload{Notices: []NoticeRef{ref}},
		asynq.Queue(queueOf(ref.Kind)), asynq.TaskID(noticeTaskID(ref.ID)), asynq.MaxRetry(retries), asynq.Timeout(sendTimeout), asynq.Retention(sendRetention))
}

// SendBatch is how many ledger rows one send task of a fan-out carries:
// the per-task costs (a dequeue, a claim, a read of the end users) are paid
// once per batch. A row whose attempt in a batch fails for a temporary
// reason is retried alone.
const SendBatch = 25

// NewSendBatchTask sends a batch of ledger rows (of one queue). Its task id
// "notices:<first id>-<last id>" makes a dispatch task that is retried queue
// each batch once; the ledger's claims make a row sent once whichever task
// gets it first.
func NewSendBatchTask(refs []NoticeRef) (*asynq.Task, error) {
	if len(refs) == 0 || len(refs) > 4*SendBatch {
		return nil, fmt.Errorf("send task: %w: %d notices", errBadPayload, len(refs))
	}
	if len(refs) == 1 {
		return NewSendTask(refs[0], sendMaxRetry)
	}
	return newTask(TypeSend, SendPayload{Notices: refs},
		asynq.Queue(queueOf(refs[0].Kind)), asynq.TaskID(fmt.Sprintf("notices:%d-%d", refs[0].ID, refs[len(refs)-1].ID)),
		asynq.MaxRetry(sendMaxRetry), asynq.Timeout(sendTimeout), asynq.Retention(sendRetention))
}

func noticeTaskID(id int64) string { return "notice:" + strconv.FormatInt(id, 10) }

func queueOf(kind rules.NoticeKind) string {
	if kind == rules.KindLockout {
		return QueueCritical
	}
	return QueueNotify
}

// NewLockoutTask records and queues the notices of one lockout; its task id
// names the lockout, so an import reporting it twice enqueues it once.
func NewLockoutTask(tenantID, endUserID int64, at time.Time) (*asynq.Task, error) {
	if tenantID == 0 || endUserID == 0 || at.IsZero() {
		return nil, fmt.Errorf("lockout task: %w: end user %d at %v", errBadPayload, endUserID, at)
	}
	occasion := rules.LockoutOccasion(at)
	return newTask(TypeLockout, LockoutPayload{TenantID: tenantID, EndUserID: endUserID, LockedOutAt: at.UTC()},
		asynq.Queue(QueueCritical), asynq.TaskID(fmt.Sprintf("lockout:%d:%s", endUserID, occasion)),
		asynq.MaxRetry(eventMaxRetry), asynq.Timeout(eventTimeout), asynq.Retention(eventRetention))
}

// NewWelcomeTask records and queues a welcome email asked for at the
// instant at. Requests within the same minute are one welcome.
func NewWelcomeTask(tenantID, endUserID int64, at time.Time) (*asynq.Task, error) {
	if tenantID == 0 || endUserID == 0 {
		return nil, fmt.Errorf("welcome task: %w: end user %d", errBadPayload, endUserID)
	}
	occasion := at.UTC().Truncate(time.Minute).Format(time.RFC3339)
	return newTask(TypeWelcome, WelcomePayload{TenantID: tenantID, EndUserID: endUserID, Occasion: occasion},
		asynq.Queue(QueueNotify), asynq.TaskID(fmt.Sprintf("welcome:%d:%s", endUserID, occasion)),
		asynq.MaxRetry(eventMaxRetry), asynq.Timeout(eventTimeout), asynq.Retention(eventRetention))
}

// refsOf converts store refs to payload refs.
func refsOf(rs []store.NoticeRef) []NoticeRef {
	out := make([]NoticeRef, len(rs))
	for i, r := range rs {
		out[i] = NoticeRef{TenantID: r.TenantID, ID: r.ID, EndUserID: r.EndUserID, Kind: r.Kind}
	}
	return out
}
