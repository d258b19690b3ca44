package agentserver

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"selfserve/connectors"
	"selfserve/internal/agentproto"
	"selfserve/internal/store"
)

// Handler serves /agent/v1 (to be mounted on the public listener).
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /agent/v1/enrol", s.enrol)
	mux.Handle("POST /agent/v1/heartbeat", s.signed(s.heartbeat))
	mux.Handle("POST /agent/v1/jobs/next", s.signed(s.nextJob))
	mux.Handle("POST /agent/v1/jobs/{id}/extend", s.signed(s.extendJob))
	mux.Handle("POST /agent/v1/jobs/{id}/pages", s.signed(s.pushPage))
	mux.Handle("POST /agent/v1/jobs/{id}/result", s.signed(s.jobResult))
	mux.HandleFunc("/agent/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such agent endpoint")
	})
	return mux
}

// httpError is an answer to an agent other than 200.
type httpError struct {
	status  int
	code    string
	message string
}

func (e *httpError) Error() string { return e.message }

func fail(status int, code, format string, args ...any) *httpError {
	return &httpError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	var body agentproto.Error
	body.Error.Code, body.Error.Message = code, message
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", agentproto.Scheme)
	}
	writeJSON(w, status, body)
}

// readBody reads at most agentproto.MaxBody bytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, agentproto.MaxBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, fail(http.StatusRequestEntityTooLarge, "body_too_large", "the request body is larger than %d bytes", tooBig.Limit)
	}
	if err != nil {
		return nil, fail(http.StatusBadRequest, "bad_body", "reading the request body: %v", err)
	}
	return body, nil
}

func decode(body []byte, dst any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return fail(http.StatusBadRequest, "bad_json", "the body is not the expected JSON: %v", err)
	}
	if dec.More() {
		return fail(http.StatusBadRequest, "bad_json", "the body holds more than one JSON value")
	}
	return nil
}

func (s *Service) stampTime(w http.ResponseWriter) {
	w.Header().Set(agentproto.HeaderServerTime, strconv.FormatInt(s.now().UnixMilli(), 10))
}

func (s *Service) enrol(w http.ResponseWriter, r *http.Request) {
	s.stampTime(w)
	body, err := readBody(w, r)
	if err == nil {
		err = s.doEnrol(r.Context(), w, body)
	}
	s.answerError(w, r, nil, err)
}

func (s *Service) doEnrol(ctx context.Context, w http.ResponseWriter, body []byte) error {
	var req agentproto.EnrolRequest
	if err := decode(body, &req); err != nil {
		return err
	}
	switch {
	case req.Code == "":
		return fail(http.StatusBadRequest, "invalid_field", "code: give the install code")
	case len(req.SignKey) != ed25519.PublicKeySize:
		return fail(http.StatusBadRequest, "invalid_field", "sign_key: want a %d-byte Ed25519 public key", ed25519.PublicKeySize)
	case len(req.BoxKey) != 32:
		return fail(http.StatusBadRequest, "invalid_field", "box_key: want a 32-byte X25519 public key")
	case len(req.Hostname) > 255 || len(req.Version) > 64:
		return fail(http.StatusBadRequest, "invalid_field", "hostname or version too long")
	}
	a, err := s.Store.EnrolAgent(ctx, hashCode(req.Code), req.SignKey, req.BoxKey, req.Hostname, req.Version)
	if errors.Is(err, store.ErrInstallCode) {
		return fail(http.StatusUnauthorized, "install_code", "%v", err)
	}
	if err != nil {
		return err
	}
	tenant, err := s.Store.Tenant(ctx, a.TenantID)
	if err != nil {
		return err
	}
	conn, err := s.Store.Connection(ctx, a.TenantID, a.ConnectionID)
	if err != nil {
		return err
	}
	dir, err := DirectoryOf(conn)
	if err != nil {
		return err
	}
	s.logger().Info("agent enrolled", "agent_id", a.ID, "tenant_id", a.TenantID, "connection_id", a.ConnectionID, "hostname", a.Hostname, "version", a.Version)
	writeJSON(w, http.StatusOK, agentproto.EnrolResponse{AgentID: a.ID, Tenant: tenant.Name, Connection: conn.Name, Directory: dir, ServerTime: s.now().UTC()})
	return nil
}

// DirectoryOf returns what an agent connection reads: "ad" or "file".
func DirectoryOf(conn store.Connection) (string, error) {
	var set struct {
		Directory string `json:"directory"`
	}
	if err := json.Unmarshal(conn.Settings, &set); err != nil {
		return "", fmt.Errorf("connection %q settings: %w", conn.Name, err)
	}
	if set.Directory == "" {
		return "ad", nil
	}
	return set.Directory, nil
}

// signedHandler handles a request the agent signed.
type signedHandler func(ctx context.Context, w http.ResponseWriter, r *http.Request, a store.Agent, body []byte) error

// signed authenticates a request: the signature must be the live agent's
// over this very request, within the clock window, with a fresh nonce.
// Every failure is a 401 that says no more than needed.
func (s *Service) signed(h signedHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.stampTime(w)
		body, err := readBody(w, r)
		if err != nil {
			s.answerError(w, r, nil, err)
			return
		}
		a, err := s.authenticate(r, body)
		if err != nil {
			s.answerError(w, r, nil, err)
			return
		}
		s.answerError(w, r, &a, h(r.Context(), w, r, a, body))
	})
}

var errUnauthenticated = fail(http.StatusUnauthorized, "unauthenticated", "the request is not signed by an enrolled agent")

func (s *Service) authenticate(r *http.Request, body []byte) (store.Agent, error) {
	sig, err := agentproto.Parse(r.Header.Get("Authorization"))
	if err != nil {
		s.logger().Warn("agent request refused", "reason", err, "remote", r.RemoteAddr, "path", r.URL.Path)
		return store.Agent{}, errUnauthenticated
	}
	a, err := s.Store.AgentForAuth(r.Context(), sig.AgentID)
	if errors.Is(err, store.ErrNotFound) {
		s.logger().Warn("agent request refused", "reason", "unknown agent", "agent_id", sig.AgentID, "remote", r.RemoteAddr)
		return a, errUnauthenticated
	}
	if err != nil {
		return a, err
	}
	if !sig.Verify(a.SignKey, r.Method, r.URL.RequestURI(), body) {
		s.logger().Warn("agent request refused", "reason", "bad signature", "agent_id", a.ID, "remote", r.RemoteAddr)
		return a, errUnauthenticated
	}
	if a.RevokedAt != nil {
		s.logger().Warn("agent request refused", "reason", "revoked", "agent_id", a.ID, "tenant_id", a.TenantID, "remote", r.RemoteAddr)
		return a, fail(http.StatusUnauthorized, "revoked", "this agent was revoked: enrol it again with a new install code")
	}
	if skew := s.now().Sub(sig.Time); skew > agentproto.MaxSkew || skew < -agentproto.MaxSkew {
		s.logger().Warn("agent request refused", "reason", "clock skew", "agent_id", a.ID, "skew", skew.Round(time.Second).String())
		return a, fail(http.StatusUnauthorized, "clock_skew", "the request's time is %s away from the server's; correct it from the %s header", skew.Round(time.Second), agentproto.HeaderServerTime)
	}
	if err := s.Store.UseAgentNonce(r.Context(), a.ID, sig.Nonce, 2*agentproto.MaxSkew); errors.Is(err, store.ErrConflict) {
		s.logger().Warn("agent request refused", "reason", "replayed nonce", "agent_id", a.ID, "remote", r.RemoteAddr)
		return a, fail(http.StatusUnauthorized, "replay", "this request was seen before")
	} else if err != nil {
		return a, err
	}
	return a, nil
}

// answerError writes err (nil: nothing to do) and logs it with the agent's
// identity.
func (s *Service) answerError(w http.ResponseWriter, r *http.Request, a *store.Agent, err error) {
	if err == nil {
		return
	}
	log := s.logger().With("path", r.URL.Path, "remote", r.RemoteAddr)
	if a != nil {
		log = log.With("agent_id", a.ID, "tenant_id", a.TenantID, "connection_id", a.ConnectionID)
	} else if sig, perr := agentproto.Parse(r.Header.Get("Authorization")); perr == nil {
		// Refused before its signature could be checked (a body too
		// large to read): whom the request claims to come from.
		log = log.With("claimed_agent_id", sig.AgentID)
	}
	var he *httpError
	switch {
	case errors.As(err, &he):
		if he.status != http.StatusUnauthorized {
			log.Warn("agent request refused", "status", he.status, "reason", he.message)
		}
		writeError(w, he.status, he.code, he.message)
	case errors.Is(err, store.ErrLeaseLost):
		log.Warn("agent request refused", "status", 409, "reason", err)
		writeError(w, http.StatusConflict, "lease_lost", "the run was taken over or ended: stop this job")
	case errors.Is(err, store.ErrNotFound):
		log.Warn("agent request refused", "status", 404, "reason", err)
		writeError(w, http.StatusNotFound, "not_found", "no such job for this agent")
	case errors.Is(err, store.ErrConflict):
		log.Warn("agent request refused", "status", 409, "reason", err)
		writeError(w, http.StatusConflict, "conflict", err.Error())
	case errors.Is(err, context.Canceled):
	default:
		log.Error("agent request failed", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "internal error; the server log has the details")
	}
}

func (s *Service) heartbeat(ctx context.Context, w http.ResponseWriter, _ *http.Request, a store.Agent, body []byte) error {
	var hb agentproto.Heartbeat
	if err := decode(body, &hb); err != nil {
		return err
	}
	if len(hb.Hostname) > 255 || len(hb.Version) > 64 {
		return fail(http.StatusBadRequest, "invalid_field", "hostname or version too long")
	}
	var policy json.RawMessage
	if hb.Policy != nil {
		policy, _ = json.Marshal(hb.Policy)
	}
	if err := s.Store.TouchAgent(ctx, a.ID, hb.Hostname, hb.Version, policy); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"server_time": s.now().UTC()})
	return nil
}

// nextJob holds the request until a job is queued for the agent's
// connection (then leases it) or the long-poll ends (204).
func (s *Service) nextJob(ctx context.Context, w http.ResponseWriter, _ *http.Request, a store.Agent, _ []byte) error {
	deadline := time.Now().Add(agentproto.LongPoll)
	var seen time.Time
	for {
		if time.Since(seen) > 10*time.Second {
			if err := s.Store.MarkAgentSeen(ctx, a.ID); err != nil {
				return err
			}
			seen = time.Now()
		}
		if err := s.expireJobs(ctx); err != nil {
			return err
		}
		news := s.jobNews() // before the look, so a job made during it is not missed
		job, err := s.lease(ctx, a)
		if err == nil {
			writeJSON(w, http.StatusOK, job)
			return nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if time.Now().After(deadline) {
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(s.poll()):
		case <-news:
		}
		// A revoked agent learns it now, not at the end of its poll.
		if cur, err := s.Store.AgentForAuth(ctx, a.ID); err == nil && cur.RevokedAt != nil {
			return fail(http.StatusUnauthorized, "revoked", "this agent was revoked: enrol it again with a new install code")
		}
	}
}

// expireJobs ends the jobs that ran out of time, at most once a second per
// process (every waiting long-poll would otherwise do it on each look).
func (s *Service) expireJobs(ctx context.Context) error {
	now := time.Now().UnixMilli()
	last := s.expiredAt.Load()
	if now-last < 1000 || !s.expiredAt.CompareAndSwap(last, now) {
		return nil
	}
	return s.Store.ExpireAgentJobs(ctx, SealedLife, WriteReportGrace)
}

func (s *Service) lease(ctx context.Context, a store.Agent) (agentproto.Job, error) {
	j, err := s.Store.LeaseAgentJob(ctx, a, s.now().Add(SyncLease))
	if err != nil {
		return agentproto.Job{}, err
	}
	out := agentproto.Job{ID: j.ID, Kind: j.Kind, LeaseUntil: *j.LeaseUntil}
	if j.Kind == store.AgentJobSync {
		return s.syncJob(ctx, a, j, out)
	}
	// A write-back's lease ends when the end user stops waiting: the agent
	// must not apply a password the end user was told did not take.
	lu := j.ExpiresAt
	if err := s.Store.ExtendAgentJob(ctx, a, j.ID, lu); err != nil {
		return out, err
	}
	out.LeaseUntil = lu.UTC()
	var p struct {
		Account connectors.Account `json:"account"`
	}
	if err := json.Unmarshal([]byte(j.Payload), &p); err != nil {
		return out, fmt.Errorf("job %d payload: %w", j.ID, err)
	}
	out.Account, out.SealedPassword = &p.Account, j.Sealed
	return out, nil
}

// syncJob fills a leased sync job's arguments from its run as it is now: a
// job handed out again resumes from the run's saved position (and the
// connection's cursor, which committed pages moved), numbering its pages
// from 1 again.
func (s *Service) syncJob(ctx context.Context, a store.Agent, j store.AgentJob, out agentproto.Job) (agentproto.Job, error) {
	if j.RunID == nil {
		return out, fmt.Errorf("sync job %d has no run", j.ID)
	}
	run, err := s.Store.Run(ctx, a.TenantID, *j.RunID)
	if err != nil {
		return out, err
	}
	if run.Status.Finished() {
		_, _ = s.Store.FinishAgentJob(ctx, a, j.ID, store.AgentJobFailed, agentproto.ResultFailed, "its run is "+string(run.Status))
		return out, fmt.Errorf("job %d: its run ended: %w", j.ID, store.ErrNotFound)
	}
	conn, err := s.Store.Connection(ctx, a.TenantID, a.ConnectionID)
	if err != nil {
		return out, err
	}
	out.Sync = &agentproto.SyncArgs{RunID: run.ID, Mode: string(run.Mode), Resume: run.Resume}
	if run.Mode == store.ModeIncremental {
		out.Sync.Cursor = conn.Cursor
	}
	if j.Pages > 0 {
		if err := s.Store.ResetAgentJobPages(ctx, a.TenantID, j.ID); err != nil {
			return out, err
		}
	}
	return out, nil
}

func jobID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, fail(http.StatusBadRequest, "invalid_field", "job id %q is not a positive integer", r.PathValue("id"))
	}
	return id, nil
}

func (s *Service) extendJob(ctx context.Context, w http.ResponseWriter, r *http.Request, a store.Agent, _ []byte) error {
	id, err := jobID(r)
	if err != nil {
		return err
	}
	j, err := s.Store.HeldAgentJob(ctx, a, id)
	if err != nil {
		return err
	}
	if j.Kind != store.AgentJobSync {
		return fail(http.StatusConflict, "not_extendable", "a write-back's lease cannot be extended")
	}
	lu := s.now().Add(SyncLease)
	if err := s.Store.ExtendAgentJob(ctx, a, id, lu); err != nil {
		return err
	}
	if j.RunID != nil {
		run, err := s.Store.Run(ctx, a.TenantID, *j.RunID)
		if err != nil {
			return err
		}
		if err := s.Store.BeatRun(ctx, &run); errors.Is(err, store.ErrLeaseLost) {
			return fail(http.StatusConflict, "lease_lost", "the run was taken over or ended: stop this job")
		} else if err != nil {
			return err
		}
	}
	_ = s.Store.MarkAgentSeen(ctx, a.ID)
	writeJSON(w, http.StatusOK, map[string]any{"lease_until": lu.UTC()})
	return nil
}

func (s *Service) pushPage(ctx context.Context, w http.ResponseWriter, r *http.Request, a store.Agent, body []byte) error {
	id, err := jobID(r)
	if err != nil {
		return err
	}
	var page agentproto.Page
	if err := decode(body, &page); err != nil {
		return err
	}
	switch {
	case page.Seq < 1:
		return fail(http.StatusBadRequest, "invalid_field", "seq: pages are numbered from 1")
	case len(page.Users) > agentproto.MaxPageUsers:
		return fail(http.StatusRequestEntityTooLarge, "page_too_large", "a page holds at most %d users, this one %d", agentproto.MaxPageUsers, len(page.Users))
	}
	for i, u := range page.Users {
		if u.ExternalID == "" {
			return fail(http.StatusBadRequest, "invalid_field", "users[%d].external_id: empty", i)
		}
	}
	j, err := s.Store.HeldAgentJob(ctx, a, id)
	if err != nil {
		return err
	}
	if j.Kind != store.AgentJobSync || j.RunID == nil {
		return fail(http.StatusConflict, "not_a_sync", "job %d is a %s, not a sync", id, j.Kind)
	}
	var run store.SyncRun
	var lockouts []store.Lockout
	committed := false
	err = s.Store.InTx(ctx, func(tx *store.Store) error {
		fresh, err := tx.AdvanceAgentJobPage(ctx, a, id, page.Seq)
		if err != nil || !fresh {
			return err
		}
		im := *s.Importer
		im.Store = tx
		run, lockouts, err = im.CommitRemotePage(ctx, a.TenantID, *j.RunID, page.UserPage())
		committed = err == nil
		return err
	})
	if err != nil {
		return err
	}
	_ = s.Store.ExtendAgentJob(ctx, a, id, s.now().Add(SyncLease))
	_ = s.Store.MarkAgentSeen(ctx, a.ID)
	if committed && len(lockouts) > 0 && s.OnLockouts != nil {
		s.OnLockouts(ctx, a.TenantID, lockouts)
	}
	writeJSON(w, http.StatusOK, map[string]any{"seq": page.Seq, "committed": committed, "processed": run.Processed})
	return nil
}

func (s *Service) jobResult(ctx context.Context, w http.ResponseWriter, r *http.Request, a store.Agent, body []byte) error {
	id, err := jobID(r)
	if err != nil {
		return err
	}
	var res agentproto.Result
	if err := decode(body, &res); err != nil {
		return err
	}
	if len(res.Reason) > 2000 {
		res.Reason = res.Reason[:2000]
	}
	j, err := s.Store.HeldAgentJob(ctx, a, id)
	if err != nil {
		return err
	}
	state := store.AgentJobFailed
	switch res.Code {
	case agentproto.ResultDone:
		state = store.AgentJobDone
	case agentproto.ResultFailed, agentproto.ResultPasswordPolicy, agentproto.ResultUnsupported:
	case agentproto.ResultResyncRequired:
		if j.Kind != store.AgentJobSync {
			return fail(http.StatusBadRequest, "invalid_field", "code: resync_required is for sync jobs")
		}
	default:
		return fail(http.StatusBadRequest, "invalid_field", "code: %q is not a result code", res.Code)
	}
	if _, err := s.Store.FinishAgentJob(ctx, a, id, state, res.Code, res.Reason); err != nil {
		return err
	}
	s.logger().Info("agent job finished", "agent_id", a.ID, "tenant_id", a.TenantID, "job_id", id, "kind", j.Kind, "result", res.Code)
	if j.Kind == store.AgentJobSync && j.RunID != nil {
		if err := s.finishSync(ctx, a, j, res); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "state": state})
	return nil
}

// finishSync ends the run of a finished sync job: removals after a complete
// full listing, the run's final state, or, when the agent's incremental
// cursor was refused, a full listing of the same run.
func (s *Service) finishSync(ctx context.Context, a store.Agent, j store.AgentJob, res agentproto.Result) error {
	switch res.Code {
	case agentproto.ResultDone:
		_, err := s.Importer.FinishRemoteRun(ctx, a.TenantID, *j.RunID, nil)
		return err
	case agentproto.ResultResyncRequired:
		run, err := s.Importer.RestartRemoteRunFull(ctx, a.TenantID, *j.RunID)
		if err != nil {
			return err
		}
		conn, err := s.Store.Connection(ctx, a.TenantID, a.ConnectionID)
		if err != nil {
			return err
		}
		return s.StartRemoteSync(ctx, run, conn)
	default:
		reason := res.Reason
		if reason == "" {
			reason = "the agent reported a failure"
		}
		_, err := s.Importer.FinishRemoteRun(ctx, a.TenantID, *j.RunID, errors.New("agent: "+reason))
		return err
	}
}
