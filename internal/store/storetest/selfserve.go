package storetest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"selfserve/internal/store"
)

// testSelfServe: challenges (attempts void at the limit, a factor verifies
// once, a grant is issued once, claimed once until released), jobs through
// their states, logins found by each form, expired challenges swept, and
// every read scoped by tenant.
func testSelfServe(t *testing.T, s *store.Store) {
	ctx := context.Background()
	f := newFixture(t, s, "ss")
	other := newFixture(t, s, "ss-other")
	applyPage(t, s, f, 1, user("alice", "+447700900001"))
	u := endUsers(t, s, f.tenant.ID)["alice"]
	now := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	c := store.Challenge{ID: "c1", TenantID: f.tenant.ID, EndUserID: &u.ID, Purpose: store.PurposeReset, Factors: "sms",
		SMSCodeHash: []byte{1, 2, 3}, ExpiresAt: now.Add(10 * time.Minute), CreatedAt: now}
	must(t, s.CreateChallenge(ctx, c))
	if _, err := s.Challenge(ctx, other.tenant.ID, "c1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another tenant reads the challenge: %v", err)
	}
	got, err := s.Challenge(ctx, f.tenant.ID, "c1")
	must(t, err)
	if !bytes.Equal(got.SMSCodeHash, c.SMSCodeHash) || !got.Live(now) || got.EndUserID == nil || *got.EndUserID != u.ID {
		t.Errorf("challenge read back: %+v", got)
	}
	for i := 1; i <= 2; i++ {
		if n, err := s.FailChallengeAttempt(ctx, f.tenant.ID, "c1", 2, now); err != nil || n != i {
			t.Fatalf("attempt %d: %d %v", i, n, err)
		}
	}
	if _, err := s.FailChallengeAttempt(ctx, f.tenant.ID, "c1", 2, now); !errors.Is(err, store.ErrChallengeDead) {
		t.Errorf("attempt after the limit: %v", err)
	}
	if _, err := s.VerifyChallengeFactor(ctx, f.tenant.ID, "c1", "sms", now); !errors.Is(err, store.ErrChallengeDead) {
		t.Errorf("verify a voided challenge: %v", err)
	}

	c.ID, c.Purpose = "c2", store.PurposeUnlock
	must(t, s.CreateChallenge(ctx, c))
	if _, err := s.VerifyChallengeFactor(ctx, f.tenant.ID, "c2", "sms", now.Add(11*time.Minute)); !errors.Is(err, store.ErrChallengeDead) {
		t.Errorf("verify after expiry: %v", err)
	}
	v, err := s.VerifyChallengeFactor(ctx, f.tenant.ID, "c2", "sms", now)
	if err != nil || !v.Verified("sms") {
		t.Fatalf("verify: %+v %v", v, err)
	}
	if _, err := s.VerifyChallengeFactor(ctx, f.tenant.ID, "c2", "sms", now); !errors.Is(err, store.ErrChallengeDead) {
		t.Errorf("a factor verified twice: %v", err)
	}
	hash := bytes.Repeat([]byte{9}, 32)
	must(t, s.IssueGrant(ctx, f.tenant.ID, "c2", hash, now.Add(10*time.Minute)))
	if err := s.IssueGrant(ctx, f.tenant.ID, "c2", []byte{8}, now.Add(10*time.Minute)); !errors.Is(err, store.ErrChallengeDead) {
		t.Errorf("a second grant: %v", err)
	}
	if _, err := s.GrantChallenge(ctx, other.tenant.ID, hash, now); !errors.Is(err, store.ErrGrantUnusable) {
		t.Errorf("another tenant's grant: %v", err)
	}
	if g, err := s.ClaimGrant(ctx, f.tenant.ID, hash, now); err != nil || g.ID != "c2" {
		t.Fatalf("claim: %+v %v", g, err)
	}
	if _, err := s.ClaimGrant(ctx, f.tenant.ID, hash, now); !errors.Is(err, store.ErrGrantUnusable) {
		t.Errorf("claimed twice: %v", err)
	}
	must(t, s.ReleaseGrant(ctx, f.tenant.ID, "c2"))
	if _, err := s.ClaimGrant(ctx, f.tenant.ID, hash, now.Add(11*time.Minute)); !errors.Is(err, store.ErrGrantUnusable) {
		t.Errorf("claimed after expiry: %v", err)
	}
	if _, err := s.ClaimGrant(ctx, f.tenant.ID, hash, now); err != nil {
		t.Errorf("claim after release: %v", err)
	}

	queued, err := s.CreatePasswordJob(ctx, store.PasswordJob{TenantID: f.tenant.ID, EndUserID: u.ID, ChallengeID: "c2", Action: store.PurposeUnlock,
		Target: store.TargetLocal, ClientIP: "203.0.113.1", State: store.JobDone})
	if err != nil || queued.State != store.JobQueued || queued.StartedAt != nil {
		t.Errorf("a new job in another state than running: %+v %v, want queued", queued, err)
	}
	j, err := s.CreatePasswordJob(ctx, store.PasswordJob{TenantID: f.tenant.ID, EndUserID: u.ID, ChallengeID: "c2", Action: store.PurposeUnlock,
		Target: store.TargetLocal, ClientIP: "203.0.113.1", State: store.JobRunning})
	if err != nil || j.State != store.JobRunning || j.StartedAt == nil {
		t.Errorf("a job carried out at once: %+v %v, want running and started", j, err)
	}
	if _, err := s.FinishPasswordJob(ctx, other.tenant.ID, j.ID, store.JobDone, ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another tenant finishes the job: %v", err)
	}
	done, err := s.FinishPasswordJob(ctx, f.tenant.ID, j.ID, store.JobFailed, "no agent")
	if err != nil || done.State != store.JobFailed || done.Reason != "no agent" || done.FinishedAt == nil {
		t.Errorf("finish: %+v %v", done, err)
	}
	if jobs, err := s.PasswordJobs(ctx, f.tenant.ID, u.ID, 0); err != nil || len(jobs) != 2 {
		t.Errorf("jobs: %+v %v", jobs, err)
	}

	for _, login := range []string{"alice", "ALICE", `CONTOSO\alice`, "alice@contoso.example"} {
		if us, err := s.FindEndUsersByLogin(ctx, f.tenant.ID, login, 2); err != nil || len(us) != 1 || us[0].ID != u.ID {
			t.Errorf("login %q: %d %v", login, len(us), err)
		}
	}
	if us, _ := s.FindEndUsersByLogin(ctx, other.tenant.ID, "alice", 2); len(us) != 0 {
		t.Errorf("another tenant finds alice")
	}

	if n, err := s.DeleteExpiredChallenges(ctx, now.Add(time.Hour)); err != nil || n != 2 {
		t.Errorf("swept %d: %v", n, err)
	}
}
