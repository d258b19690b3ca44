package worker_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"selfserve/internal/rules"
	"selfserve/internal/store"
	"selfserve/worker"
)

// TestGivenUpSendEndsFailed: a send task whose every attempt dies after
// claiming its row, without the Sender recording the outcome (as when the
// process loses the task's lease mid-send), is retried until asynq gives up
// and archives it; its ledger row then ends failed with the reason, not
// sending forever. A row another attempt finished stays as it is.
func TestGivenUpSendEndsFailed(t *testing.T) {
	t.Parallel()
	requireServices(t)
	st, _ := postgresStore(t)
	rd := testRedis(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	f := newFixture(t, st, "giveup", 1)
	f.put(t, st, 0, userRec(1, now.Add(3*24*time.Hour)), userRec(2, now.Add(3*24*time.Hour)))
	users, err := st.EndUsers(ctx, f.tenant.ID, store.EndUserFilter{})
	must(t, err)
	refs, err := st.CreateNotices(ctx, []store.NewNotice{
		{TenantID: f.tenant.ID, EndUserID: users[0].ID, Kind: rules.KindExpiryReminder, Occasion: "2026-12-01", Channel: store.ChannelEmail},
		{TenantID: f.tenant.ID, EndUserID: users[1].ID, Kind: rules.KindExpiryReminder, Occasion: "2026-12-01", Channel: store.ChannelEmail},
	})
	must(t, err)
	if len(refs) != 2 {
		t.Fatalf("%d rows written", len(refs))
	}
	dying, finished := refs[0], refs[1]

	// Each attempt claims its row and dies before recording anything; the
	// other row was sent by an earlier attempt before its task died.
	var attempts atomic.Int32
	mux := asynq.NewServeMux()
	mux.HandleFunc(worker.TypeSend, func(ctx context.Context, task *asynq.Task) error {
		attempts.Add(1)
		if _, _, err := st.ClaimNotice(ctx, f.tenant.ID, dying.ID, time.Millisecond); err != nil && !errors.Is(err, store.ErrNoticeBusy) {
			return err
		}
		return errors.New("lost the provider connection mid-send")
	})
	_, _, err = st.ClaimNotice(ctx, f.tenant.ID, finished.ID, time.Minute)
	must(t, err)
	must(t, st.MarkNoticeSent(ctx, f.tenant.ID, finished.ID, now))

	logger := testLogger(t)
	w := worker.NewWorker(worker.ServerOptions{Redis: rd, Logger: logger, Retry: testRetry(), PollInterval: 20 * time.Millisecond,
		ShutdownTimeout: 5 * time.Second, ErrorHandler: &worker.NoticeFinaliser{Store: st, Logger: logger}})
	must(t, w.Start(mux))
	t.Cleanup(w.Shutdown)
	client := asynq.NewClient(rd)
	defer client.Close()
	for _, ref := range []store.NoticeRef{dying, finished} {
		task, err := worker.NewSendTask(worker.NoticeRef{TenantID: ref.TenantID, ID: ref.ID, EndUserID: ref.EndUserID, Kind: ref.Kind}, 2)
		must(t, err)
		_, err = client.Enqueue(task)
		must(t, err)
	}
	drain(t, rd, time.Minute)

	if n := attempts.Load(); n != 6 {
		t.Errorf("%d attempts, want 3 per task (2 retries)", n)
	}
	for _, nt := range notices(t, st, f.tenant.ID) {
		switch nt.ID {
		case dying.ID:
			if nt.Status != store.NoticeFailed || !strings.Contains(nt.Error, "gave up after 3 attempts: lost the provider connection mid-send") {
				t.Errorf("given-up row: %s (%s), want failed naming the last error", nt.Status, nt.Error)
			}
		case finished.ID:
			if nt.Status != store.NoticeSent {
				t.Errorf("the row sent before its task died: %s (%s), want still sent", nt.Status, nt.Error)
			}
		}
	}
}
