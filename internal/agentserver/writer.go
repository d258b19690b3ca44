package agentserver

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/nacl/box"

	"selfserve/connectors"
	"selfserve/internal/store"
)

// ErrAgentFailed: the agent could not carry out a write-back; the message
// says why.
var ErrAgentFailed = errors.New("the connector could not carry it out")

// Writer is the connectors.PasswordWriter of an agent connection: each
// reset or unlock is a job for the agent, waited for up to WriteWait (and
// WriteReportGrace for the agent's report). A job
// is only created while the agent is online, so a reset is refused at once,
// never queued to run later with a stale password.
type Writer struct {
	svc  *Service
	conn store.Connection
}

// Writer returns the password writer of the agent connection conn.
func (s *Service) Writer(conn store.Connection) connectors.PasswordWriter {
	return &Writer{svc: s, conn: conn}
}

// Close implements connectors.Source.
func (w *Writer) Close() error { return nil }

func (w *Writer) onlineAgent(ctx context.Context) (store.Agent, error) {
	a, err := w.svc.Store.LiveAgent(ctx, w.conn.TenantID, w.conn.ID)
	if errors.Is(err, store.ErrNotFound) {
		return a, ErrOffline
	}
	if err != nil {
		return a, err
	}
	if StatusOf(a, w.svc.now()).State != "online" {
		return a, ErrOffline
	}
	return a, nil
}

// Policy returns the domain-level policy the agent last reported.
func (w *Writer) Policy(ctx context.Context, _ connectors.Account) (connectors.PasswordPolicy, error) {
	var p connectors.PasswordPolicy
	a, err := w.onlineAgent(ctx)
	if err != nil {
		return p, err
	}
	if a.Policy != "" {
		if err := json.Unmarshal([]byte(a.Policy), &p); err != nil {
			return p, fmt.Errorf("agent %d policy: %w", a.ID, err)
		}
	}
	return p, nil
}

// SetPassword hands the reset to the agent, the password sealed to its key.
func (w *Writer) SetPassword(ctx context.Context, acct connectors.Account, newPassword string) error {
	a, err := w.onlineAgent(ctx)
	if err != nil {
		return err
	}
	if len(a.BoxKey) != 32 {
		return fmt.Errorf("agent %d has no usable box key", a.ID)
	}
	sealed, err := box.SealAnonymous(nil, []byte(newPassword), (*[32]byte)(a.BoxKey), rand.Reader)
	if err != nil {
		return fmt.Errorf("seal password: %w", err)
	}
	return w.run(ctx, store.AgentJobReset, acct, sealed)
}

// Unlock hands the unlock to the agent.
func (w *Writer) Unlock(ctx context.Context, acct connectors.Account) error {
	if _, err := w.onlineAgent(ctx); err != nil {
		return err
	}
	return w.run(ctx, store.AgentJobUnlock, acct, nil)
}

func (w *Writer) run(ctx context.Context, kind string, acct connectors.Account, sealed []byte) error {
	payload, _ := json.Marshal(struct {
		Account connectors.Account `json:"account"`
	}{acct})
	st := w.svc.Store
	job, err := st.CreateAgentJob(ctx, store.AgentJob{TenantID: w.conn.TenantID, ConnectionID: w.conn.ID, Kind: kind,
		Payload: string(payload), Sealed: sealed, ExpiresAt: w.svc.now().Add(WriteWait)})
	if err != nil {
		return err
	}
	w.svc.announce()
	// Until the job's lease ends (WriteWait) and its report has had time to
	// arrive: a job the agent took may be carried out up to the lease's end,
	// so the end user is told its real outcome, not a guess.
	deadline := time.NewTimer(WriteWait + WriteReportGrace)
	defer deadline.Stop()
	tick := time.NewTicker(w.svc.poll())
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			_, _ = st.CancelAgentJob(context.WithoutCancel(ctx), w.conn.TenantID, job.ID, "the request was abandoned")
			return ctx.Err()
		case <-deadline.C:
			j, err := st.CancelAgentJob(context.WithoutCancel(ctx), w.conn.TenantID, job.ID, "the connector did not answer in time")
			if err == nil && j.Finished() && j.Reason != "the connector did not answer in time" {
				return jobError(j)
			}
			if err == nil && j.State == store.AgentJobLeased {
				return fmt.Errorf("%w: your IT provider's connector took the request but did not confirm it in time; it may have been applied", ErrAgentFailed)
			}
			return fmt.Errorf("%w: your IT provider's connector did not answer in time", ErrAgentFailed)
		case <-tick.C:
			j, err := st.AgentJob(ctx, w.conn.TenantID, job.ID)
			if err != nil {
				return err
			}
			if j.Finished() {
				return jobError(j)
			}
		}
	}
}

// jobError maps a finished write-back job to the PasswordWriter's errors.
func jobError(j store.AgentJob) error {
	switch {
	case j.State == store.AgentJobDone:
		return nil
	case j.Result == "password_policy":
		return &connectors.PasswordRejectedError{Reason: j.Reason}
	case j.Result == "unsupported":
		return fmt.Errorf("%w: %s", connectors.ErrUnsupported, j.Reason)
	default:
		return fmt.Errorf("%w: %s", ErrAgentFailed, j.Reason)
	}
}
