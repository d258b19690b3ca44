package worker

import (
	"github.com/hibiken/asynq"
	asynqmetrics "github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"

	"selfserve/internal/store"
)

// Metrics are the workers' Prometheus metrics, all prefixed selfserve_.
type Metrics struct {
	// Syncs counts finished syncs and customer imports by kind (sync,
	// customer_import) and result (the run's status, or "skipped").
	Syncs *prometheus.CounterVec
	// UsersImported counts end users a sync created, updated or removed.
	UsersImported *prometheus.CounterVec
	// Notices counts send attempts by kind, channel and outcome (sent,
	// failed, skipped, retry).
	Notices *prometheus.CounterVec
	// Tasks counts processed tasks by type and result (ok, retry, failed).
	Tasks *prometheus.CounterVec
	// TaskSeconds observes task durations by type.
	TaskSeconds *prometheus.HistogramVec
	// ScanDue counts notices the expiry scan found due and ledger rows it
	// created.
	ScanDue, ScanCreated prometheus.Counter
	// ScanSeconds observes expiry scan durations.
	ScanSeconds prometheus.Histogram
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered, e.g. in tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Syncs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "selfserve_syncs_total",
			Help: "Finished syncs and customer imports by kind and result."}, []string{"kind", "result"}),
		UsersImported: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "selfserve_users_imported_total",
			Help: "End users created, updated or removed by syncs."}, []string{"change"}),
		Notices: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "selfserve_notices_total",
			Help: "Notice send attempts by kind, channel and outcome (sent, failed, skipped, retry)."}, []string{"kind", "channel", "outcome"}),
		Tasks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "selfserve_tasks_total",
			Help: "Processed tasks by type and result (ok, retry, failed)."}, []string{"type", "result"}),
		TaskSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "selfserve_task_duration_seconds",
			Help: "Task processing time by type.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}, []string{"type"}),
		ScanDue: prometheus.NewCounter(prometheus.CounterOpts{Name: "selfserve_scan_due_total",
			Help: "Notices the expiry scan found due (repeats included)."}),
		ScanCreated: prometheus.NewCounter(prometheus.CounterOpts{Name: "selfserve_scan_ledger_rows_created_total",
			Help: "Ledger rows the expiry scan created."}),
		ScanSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "selfserve_scan_duration_seconds",
			Help: "Expiry scan duration.", Buckets: prometheus.ExponentialBuckets(0.01, 3, 8)}),
	}
	if reg != nil {
		reg.MustRegister(m.Syncs, m.UsersImported, m.Notices, m.Tasks, m.TaskSeconds, m.ScanDue, m.ScanCreated, m.ScanSeconds)
	}
	return m
}

// RegisterQueueMetrics registers asynq's queue collector (asynq_queue_size,
// asynq_queue_latency_seconds, asynq_tasks_processed_total, …) with reg. It
// reads every queue through an Inspector on each scrape.
func RegisterQueueMetrics(reg prometheus.Registerer, opt asynq.RedisConnOpt) (*asynq.Inspector, error) {
	insp := asynq.NewInspector(opt)
	if err := reg.Register(asynqmetrics.NewQueueMetricsCollector(insp)); err != nil {
		insp.Close()
		return nil, err
	}
	return insp, nil
}

func (m *Metrics) scanned(r ScanResult) {
	m.ScanDue.Add(float64(r.Due))
	m.ScanCreated.Add(float64(r.Created))
	m.ScanSeconds.Observe((r.Query + r.Plan + r.Ledger + r.Enqueue).Seconds())
}

func (m *Metrics) synced(kind string, run store.SyncRun) {
	m.Syncs.WithLabelValues(kind, string(run.Status)).Inc()
	m.UsersImported.WithLabelValues("created").Add(float64(run.Created))
	m.UsersImported.WithLabelValues("updated").Add(float64(run.Updated))
	m.UsersImported.WithLabelValues("removed").Add(float64(run.Removed))
}
