package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"selfserve/internal/store"
)

// testSelfServe: challenges (attempts void at the limit, a factor verifies
// once, a grant is issued once, alone or with the last factor, claimed by
// one job until released), jobs through their states with their audit and
// notices, logins found by each form, expired challenges swept, and
// every read scoped by tenant.
func testSelfServe(t *testing.T, s *store.Store) {
	ctx := context.Background()
	f := newFixture(t, s, "ss")
	other := newFixture(t, s, "ss-other")
	applyPage(t, s, f, 1, user("alice", "+447700900001"), user("bob", "+447700900002"))
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
	if _, err := s.VerifyChallengeFactor(ctx, f.tenant.ID, "c1", "sms", now, nil); !errors.Is(err, store.ErrChallengeDead) {
		t.Errorf("verify a voided challenge: %v", err)
	}

	c.ID, c.Purpose = "c2", store.PurposeUnlock
	must(t, s.CreateChallenge(ctx, c))
	if _, err := s.VerifyChallengeFactor(ctx, f.tenant.ID, "c2", "sms", now.Add(11*time.Minute), nil); !errors.Is(err, store.ErrChallengeDead) {
		t.Errorf("verify after expiry: %v", err)
	}
	v, err := s.VerifyChallengeFactor(ctx, f.tenant.ID, "c2", "sms", now, nil)
	if err != nil || !v.Verified("sms") {
		t.Fatalf("verify: %+v %v", v, err)
	}
	if _, err := s.VerifyChallengeFactor(ctx, f.tenant.ID, "c2", "sms", now, nil); !errors.Is(err, store.ErrChallengeDead) {
		t.Errorf("a factor verified twice: %v", err)
	}
	hash := bytes.Repeat([]byte{9}, 32)
	must(t, s.IssueGrant(ctx, f.tenant.ID, "c2", hash, now.Add(10*time.Minute)))
	if err := s.IssueGrant(ctx, f.tenant.ID, "c2", []byte{8}, now.Add(10*time.Minute)); !errors.Is(err, store.ErrChallengeDead) {
		t.Errorf("a second grant: %v", err)
	}
	if _, err := s.UsableGrant(ctx, other.tenant.ID, hash, now); !errors.Is(err, store.ErrGrantUnusable) {
		t.Errorf("another tenant's grant: %v", err)
	}
	g, err := s.UsableGrant(ctx, f.tenant.ID, hash, now)
	if err != nil || g.Challenge.ID != "c2" || g.EndUser.ID != u.ID || g.EndUser.Username != "alice" {
		t.Fatalf("usable grant: %+v %v", g, err)
	}
	job := store.PasswordJob{TenantID: f.tenant.ID, EndUserID: u.ID, ChallengeID: "c2", Action: store.PurposeUnlock,
		Target: store.TargetLocal, ClientIP: "203.0.113.1", State: store.JobRunning}
	if _, err := s.StartPasswordJob(ctx, job, now.Add(11*time.Minute)); !errors.Is(err, store.ErrGrantUnusable) {
		t.Errorf("a job on an expired grant: %v", err)
	}
	foreign := job
	foreign.TenantID = other.tenant.ID
	if _, err := s.StartPasswordJob(ctx, foreign, now); !errors.Is(err, store.ErrGrantUnusable) {
		t.Errorf("a job on another tenant's grant: %v", err)
	}
	j, err := s.StartPasswordJob(ctx, job, now)
	if err != nil || j.ID == 0 || j.State != store.JobRunning || j.StartedAt == nil {
		t.Fatalf("a job carried out at once: %+v %v, want running and started", j, err)
	}
	if _, err := s.StartPasswordJob(ctx, job, now); !errors.Is(err, store.ErrGrantUnusable) {
		t.Errorf("a grant used twice: %v", err)
	}
	if _, err := s.UsableGrant(ctx, f.tenant.ID, hash, now); !errors.Is(err, store.ErrGrantUnusable) {
		t.Errorf("a claimed grant still usable: %v", err)
	}
	must(t, s.ReleaseGrant(ctx, f.tenant.ID, "c2"))
	job.State = store.JobDone
	queued, err := s.StartPasswordJob(ctx, job, now)
	if err != nil || queued.State != store.JobQueued || queued.StartedAt != nil {
		t.Errorf("a new job in another state than running: %+v %v, want queued", queued, err)
	}
	if jobs, err := s.PasswordJobs(ctx, f.tenant.ID, u.ID, 0); err != nil || len(jobs) != 2 {
		t.Errorf("jobs: %+v %v", jobs, err)
	}

	audit := store.AuditRecord{TenantID: f.tenant.ID, Actor: "end_user:1", Action: "end_user.unlocked", ObjectType: "end_user", ObjectID: "1", After: map[string]string{"result": "done"}}
	notices := func(done store.PasswordJob) []store.NewNotice {
		occasion := done.FinishedAt.UTC().Format(time.RFC3339) + " job " + fmt.Sprint(done.ID)
		return []store.NewNotice{{TenantID: f.tenant.ID, EndUserID: u.ID, Kind: "account_unlocked", Occasion: occasion, Channel: store.ChannelEmail},
			{TenantID: f.tenant.ID, EndUserID: u.ID, Kind: "account_unlocked", Occasion: occasion, Channel: store.ChannelSMS}}
	}
	foreignJob := j
	foreignJob.TenantID = other.tenant.ID
	if _, _, err := s.EndPasswordJob(ctx, foreignJob, store.JobEnd{State: store.JobDone, Audit: audit, Notices: notices}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another tenant ends the job: %v", err)
	}
	done, refs, err := s.EndPasswordJob(ctx, j, store.JobEnd{State: store.JobDone, Audit: audit, Notices: notices})
	if err != nil || done.State != store.JobDone || done.FinishedAt == nil || len(refs) != 2 || refs[0].EndUserID != u.ID || refs[0].Kind != "account_unlocked" {
		t.Errorf("end: %+v %+v %v", done, refs, err)
	}
	if _, _, err := s.EndPasswordJob(ctx, j, store.JobEnd{State: store.JobFailed, Audit: audit, Notices: notices}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a job ended twice: %v", err)
	}
	failed, refs, err := s.EndPasswordJob(ctx, queued, store.JobEnd{State: store.JobFailed, Reason: "no agent", Audit: audit})
	if err != nil || failed.State != store.JobFailed || failed.Reason != "no agent" || len(refs) != 0 {
		t.Errorf("end failed: %+v %+v %v", failed, refs, err)
	}
	if jobs, err := s.PasswordJobs(ctx, f.tenant.ID, u.ID, 0); err != nil || len(jobs) != 2 || jobs[0].State != store.JobFailed || jobs[1].State != store.JobDone {
		t.Errorf("jobs after their end: %+v %v", jobs, err)
	}
	if entries, err := s.AuditLog(ctx, f.tenant.ID, store.AuditFilter{Action: "end_user.unlocked"}); err != nil || len(entries) != 2 {
		t.Errorf("audit entries of the two ends: %d %v, want 2 (none for the refused ends)", len(entries), err)
	}
	if entries, _ := s.AuditLog(ctx, other.tenant.ID, store.AuditFilter{Action: "end_user.unlocked"}); len(entries) != 0 {
		t.Errorf("another tenant's failed end left %d audit entries", len(entries))
	}

	codeHash := bytes.Repeat([]byte{5}, 32)
	g4 := store.Grant{Hash: bytes.Repeat([]byte{4}, 32), ExpiresAt: now.Add(10 * time.Minute)}
	for _, ch := range []store.Challenge{
		{ID: "c4", Factors: "sms", Purpose: store.PurposeUnlock, EndUserID: &u.ID},
		{ID: "c5", Factors: "sms,email", Purpose: store.PurposeReset, EndUserID: &u.ID},
		{ID: "c6", Factors: "sms", Purpose: store.PurposeEnrol, EndUserID: &u.ID},
		{ID: "c7", Factors: "sms", Purpose: store.PurposeReset},
	} {
		ch.TenantID, ch.SMSCodeHash, ch.EmailCodeHash, ch.ExpiresAt, ch.CreatedAt = f.tenant.ID, codeHash, codeHash, now.Add(10*time.Minute), now
		if ch.ID == "c7" {
			ch.SMSCodeHash, ch.EmailCodeHash = nil, nil
		}
		must(t, s.CreateChallenge(ctx, ch))
	}
	for name, try := range map[string]struct {
		tenant int64
		id, ch string
		hash   []byte
		at     time.Time
	}{
		"wrong code":              {f.tenant.ID, "c4", "sms", []byte{1}, now},
		"another tenant":          {other.tenant.ID, "c4", "sms", codeHash, now},
		"expired":                 {f.tenant.ID, "c4", "sms", codeHash, now.Add(11 * time.Minute)},
		"a factor still to prove": {f.tenant.ID, "c5", "sms", codeHash, now},
		"an enrolment":            {f.tenant.ID, "c6", "sms", codeHash, now},
		"a decoy":                 {f.tenant.ID, "c7", "sms", nil, now},
	} {
		if _, err := s.ProveLastFactor(ctx, try.tenant, try.id, try.ch, try.hash, try.at, g4); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("prove, %s: %v, want ErrNotFound", name, err)
		}
	}
	if c5, _ := s.Challenge(ctx, f.tenant.ID, "c5"); c5.Verified("sms") || c5.GrantHash != nil {
		t.Errorf("a refused proof changed the challenge: %+v", c5)
	}
	p4, err := s.ProveLastFactor(ctx, f.tenant.ID, "c4", "sms", codeHash, now, g4)
	if err != nil || !p4.Challenge.Verified("sms") || !bytes.Equal(p4.Challenge.GrantHash, g4.Hash) || p4.EndUser.ID != u.ID || p4.Challenge.Purpose != store.PurposeUnlock {
		t.Errorf("prove the last factor: %+v %v", p4, err)
	}
	if _, err := s.ProveLastFactor(ctx, f.tenant.ID, "c4", "sms", codeHash, now, store.Grant{Hash: []byte{6}, ExpiresAt: now}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("proved twice: %v", err)
	}
	_, err = s.VerifyChallengeFactor(ctx, f.tenant.ID, "c5", "email", now, nil)
	must(t, err)
	g5 := store.Grant{Hash: bytes.Repeat([]byte{7}, 32), ExpiresAt: now.Add(10 * time.Minute)}
	if p5, err := s.ProveLastFactor(ctx, f.tenant.ID, "c5", "sms", codeHash, now, g5); err != nil || !bytes.Equal(p5.Challenge.GrantHash, g5.Hash) {
		t.Errorf("prove the SMS after the email: %+v %v", p5, err)
	}

	c.ID, c.Purpose = "c3", store.PurposeReset
	must(t, s.CreateChallenge(ctx, c))
	hash3 := bytes.Repeat([]byte{3}, 32)
	v3, err := s.VerifyChallengeFactor(ctx, f.tenant.ID, "c3", "sms", now, &store.Grant{Hash: hash3, ExpiresAt: now.Add(10 * time.Minute)})
	if err != nil || !v3.Verified("sms") || !bytes.Equal(v3.GrantHash, hash3) || v3.GrantExpiresAt == nil {
		t.Errorf("verify and grant at once: %+v %v", v3, err)
	}
	if g, err := s.UsableGrant(ctx, f.tenant.ID, hash3, now); err != nil || g.Challenge.ID != "c3" {
		t.Errorf("the grant issued with the last factor: %+v %v", g, err)
	}

	bob := endUsers(t, s, f.tenant.ID)["bob"]
	accessAudit := func(before, after store.EndUser) store.AuditRecord {
		return store.AuditRecord{TenantID: f.tenant.ID, Actor: "end_user", Action: "end_user.first_access", ObjectType: "end_user", ObjectID: fmt.Sprint(bob.ID),
			Before: before.FirstAccessAt, After: after.FirstAccessAt}
	}
	recorded, newly, err := s.RecordFirstAccess(ctx, bob, now, accessAudit)
	if err != nil || !newly || recorded.FirstAccessAt == nil || !recorded.FirstAccessAt.Equal(now) {
		t.Errorf("record first access: %+v %v %v", recorded.FirstAccessAt, newly, err)
	}
	if read, _ := s.EndUser(ctx, f.tenant.ID, bob.ID); read.FirstAccessAt == nil || !read.FirstAccessAt.Equal(now) {
		t.Errorf("recorded first access read back: %+v", read.FirstAccessAt)
	}
	if _, newly, err := s.RecordFirstAccess(ctx, bob, now.Add(time.Minute), accessAudit); err != nil || newly {
		t.Errorf("first access recorded twice: %v %v", newly, err)
	}
	if entries, err := s.AuditLog(ctx, f.tenant.ID, store.AuditFilter{Action: "end_user.first_access"}); err != nil || len(entries) != 1 || entries[0].Before != "null" {
		t.Errorf("first access audit: %+v %v, want one entry", entries, err)
	}

	first := now.Add(-time.Hour)
	marked, newly, err := s.MarkFirstAccess(ctx, f.tenant.ID, u.ID, first)
	if err != nil || !newly || marked.FirstAccessAt == nil || !marked.FirstAccessAt.Equal(first) || marked.Username != "alice" {
		t.Errorf("first access: %+v %v %v", marked.FirstAccessAt, newly, err)
	}
	if read, _ := s.EndUser(ctx, f.tenant.ID, u.ID); read.FirstAccessAt == nil || !read.FirstAccessAt.Equal(first) || !read.UpdatedAt.Equal(marked.UpdatedAt) {
		t.Errorf("first access read back: %+v, returned %+v", read, marked)
	}
	again, newly, err := s.MarkFirstAccess(ctx, f.tenant.ID, u.ID, now)
	if err != nil || newly || again.FirstAccessAt == nil || !again.FirstAccessAt.Equal(first) {
		t.Errorf("first access again: %+v %v %v, want the first kept", again.FirstAccessAt, newly, err)
	}
	if _, _, err := s.MarkFirstAccess(ctx, other.tenant.ID, u.ID, now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another tenant's end user's first access: %v", err)
	}

	for _, login := range []string{"alice", "ALICE", `CONTOSO\alice`, "alice@contoso.example"} {
		if us, err := s.FindEndUsersByLogin(ctx, f.tenant.ID, login, 2); err != nil || len(us) != 1 || us[0].ID != u.ID {
			t.Errorf("login %q: %d %v", login, len(us), err)
		}
	}
	if us, _ := s.FindEndUsersByLogin(ctx, other.tenant.ID, "alice", 2); len(us) != 0 {
		t.Errorf("another tenant finds alice")
	}

	if n, err := s.DeleteExpiredChallenges(ctx, now.Add(time.Hour)); err != nil || n != 7 {
		t.Errorf("swept %d: %v", n, err)
	}
}
