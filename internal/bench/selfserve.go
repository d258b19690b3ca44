package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"selfserve/connectors"
	"selfserve/connectors/ldap"
	"selfserve/internal/connection"
	"selfserve/internal/importer"
	"selfserve/internal/notify"
	"selfserve/internal/rules"
	"selfserve/internal/selfserve"
	"selfserve/internal/store"
)

// The self-serve scenarios: challenge-verify (the verification path's
// throughput against a bare handler reading the same end user) and
// unlock-storm (verified unlocks through the API against the DC against a
// raw ldapmodify of lockoutTime for the same accounts).

// codeBox is a notify.Sender that keeps the codes sent, by challenge, for
// the benchmark's client (the real providers are not measured).
type codeBox struct {
	mu    sync.Mutex
	cond  *sync.Cond
	codes map[string]string
}

var sixDigits = regexp.MustCompile(`\b\d{6}\b`)

func newCodeBox() *codeBox {
	b := &codeBox{codes: map[string]string{}}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// Send implements notify.Sender.
func (b *codeBox) Send(_ context.Context, m notify.Message) error {
	id := strings.TrimSuffix(strings.TrimPrefix(m.ID, "code-"), "-sms")
	b.mu.Lock()
	b.codes[id] = sixDigits.FindString(m.Body)
	b.mu.Unlock()
	b.cond.Broadcast()
	return nil
}

// code waits for the code of challenge id (an inactive end user gets
// none: an error after 10 seconds).
func (b *codeBox) code(id string) (string, error) {
	deadline := time.Now().Add(10 * time.Second)
	wake := time.AfterFunc(10*time.Second, b.cond.Broadcast)
	defer wake.Stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.codes[id] == "" {
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no code sent for challenge %s (is the end user active?)", id)
		}
		b.cond.Wait()
	}
	c := b.codes[id]
	delete(b.codes, id)
	return c, nil
}

// selfServeService is a service on st with limits out of the way (the
// benchmark measures the path, not the limiter's refusals) and no
// response-time floor.
func selfServeService(ctx context.Context, env *Env, st *store.Store, dirs selfserve.Directories, box *codeBox) (*selfserve.Service, func(), error) {
	opt, release, err := benchRedis(ctx, env)
	if err != nil {
		return nil, nil, err
	}
	rd := redis.NewClient(&redis.Options{Addr: opt.Addr, Username: opt.Username, Password: opt.Password, DB: opt.DB, TLSConfig: opt.TLSConfig})
	rd.FlushDB(ctx)
	svc, err := selfserve.New(selfserve.Options{Store: st, Redis: rd, EncryptionKey: bytes.Repeat([]byte{7}, 32), Directories: dirs,
		Channels:       map[store.Channel]notify.Sender{store.ChannelSMS: box, store.ChannelEmail: box},
		ChallengeFloor: -1, Limits: selfserve.Limits{PerLogin: 1 << 30, PerIP: 1 << 30}})
	if err != nil {
		rd.Close()
		release()
		return nil, nil, err
	}
	return svc, func() { svc.Close(); rd.Close(); release() }, nil
}

func postJSON(c *http.Client, url string, body any, out any) error {
	b, _ := json.Marshal(body)
	resp, err := c.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("POST %s: %d %s", url, resp.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// verifyOnce asks for a challenge for login and verifies its code,
// returning the grant.
func verifyOnce(c *http.Client, base, login, purpose string, box *codeBox) (string, error) {
	var ch struct {
		ChallengeID string `json:"challenge_id"`
	}
	if err := postJSON(c, base+"/challenges", map[string]string{"login": login, "purpose": purpose}, &ch); err != nil {
		return "", err
	}
	code, err := box.code(ch.ChallengeID)
	if err != nil {
		return "", err
	}
	var v struct {
		Grant string `json:"grant"`
	}
	if err := postJSON(c, base+"/challenges/"+ch.ChallengeID+"/verify", map[string]string{"channel": "sms", "code": code}, &v); err != nil {
		return "", err
	}
	if v.Grant == "" {
		return "", errors.New("no grant after the code")
	}
	return v.Grant, nil
}

// ChallengeVerify measures challenge + verify pairs through the API
// (PostgreSQL, Redis rate limits, hashed codes, the grant) against a bare
// handler answering the same two requests by reading the same end user.
func ChallengeVerify() Scenario {
	return Scenario{
		Name:     "challenge-verify",
		Baseline: "bare handler: 2 requests each reading the end user by UPN",
		Ours:     "POST challenges + POST verify (code, grant), sequential",
		Size:     1_000, Quick: 100, Unit: "verifications", Target: 3,
		Needs: []string{"postgres", "redis"},
		Measure: func(ctx context.Context, env *Env, side Side, size int) (time.Duration, error) {
			st, cleanup, err := FreshStore(ctx, env)
			if err != nil {
				return 0, err
			}
			defer cleanup()
			tgt, err := seedTenant(ctx, st, "bench-ss", connectors.KindFile)
			if err != nil {
				return 0, err
			}
			_, err = importer.ApplyPage(ctx, st, store.PageTarget{TenantID: tgt.tenantID, CustomerID: tgt.customerID, ConnectionID: tgt.connectionID, RunID: 1,
				Source: rules.SourceLocal, EnableSelfServe: true},
				[]store.UserRecord{{User: connectors.User{ExternalID: "u1", Username: "alice", UPN: "alice@bench.example", Email: "alice@bench.example", Mobile: "+447400123456", Enabled: true}}}, nil)
			if err != nil {
				return 0, err
			}
			if side == SideBaseline {
				return bareReads(ctx, st, tgt.tenantID, size)
			}
			box := newCodeBox()
			svc, closeSvc, err := selfServeService(ctx, env, st, nil, box)
			if err != nil {
				return 0, err
			}
			defer closeSvc()
			srv := httptest.NewServer(svc.Handler())
			defer srv.Close()
			base := srv.URL + "/self-serve/v1/bench-ss"
			start := time.Now()
			for range size {
				if _, err := verifyOnce(srv.Client(), base, "alice@bench.example", "reset", box); err != nil {
					return 0, err
				}
			}
			return time.Since(start), nil
		},
	}
}

// bareReads serves size pairs of requests, each reading the end user by
// UPN and answering JSON: the floor of any handler doing the same job.
func bareReads(ctx context.Context, st *store.Store, tenantID int64, size int) (time.Duration, error) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Login string `json:"login"`
		}
		_ = json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&req)
		us, err := st.FindEndUsersByLogin(r.Context(), tenantID, "alice@bench.example", 2)
		if err != nil || len(us) != 1 {
			http.Error(w, "no user", 500)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"id": us[0].ID, "mobile": us[0].Mobile})
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	start := time.Now()
	for range size {
		for range 2 {
			if err := postJSON(srv.Client(), srv.URL+"/x", map[string]string{"login": "alice@bench.example"}, nil); err != nil {
				return 0, err
			}
		}
	}
	return time.Since(start), nil
}

// unlockStormClients is how many end users unlock at once.
const unlockStormClients = 8

// UnlockStorm measures verified unlocks through the API (challenge, code,
// grant, lockoutTime=0 over LDAPS, job, audit, notices), 8 end users at a
// time, against one ldapmodify of lockoutTime=0 for the same accounts (the
// enabled ones of the size seeded: about 95%).
func UnlockStorm() Scenario {
	return Scenario{
		Name:     "unlock-storm",
		Baseline: "ldapmodify lockoutTime=0, one LDAPS connection, same accounts",
		Ours:     "challenge + verify + unlock through the API, 8 at a time",
		Size:     1_000, Quick: 50, Unit: "unlocks", Target: 2,
		Needs:   []string{"postgres", "redis", "samba"},
		Prepare: prepareAD,
		Measure: measureUnlockStorm,
	}
}

func measureUnlockStorm(ctx context.Context, env *Env, side Side, size int) (time.Duration, error) {
	info, err := readADInfo()
	if err != nil {
		return 0, err
	}
	st, cleanup, err := FreshStore(ctx, env)
	if err != nil {
		return 0, err
	}
	defer cleanup()
	tgt, secrets, err := adConnection(ctx, st, info, size)
	if err != nil {
		return 0, err
	}
	if _, err := adImporter(st, secrets).Sync(ctx, importer.Request{TenantID: tgt.tenantID, ConnectionID: tgt.connectionID, Full: true, Trigger: "bench"}); err != nil {
		return 0, err
	}
	all, err := st.EndUsers(ctx, tgt.tenantID, store.EndUserFilter{})
	if err != nil {
		return 0, err
	}
	if len(all) < size {
		return 0, fmt.Errorf("imported %d users, want %d", len(all), size)
	}
	// The enabled ones (the seed disables 5%): a disabled account gets no
	// code, and both sides unlock the same accounts.
	var users []store.EndUser
	for _, u := range all[:size] {
		if u.Enabled {
			users = append(users, u)
		}
	}
	if side == SideBaseline {
		return ldapmodifyUnlock(ctx, info, users)
	}
	// The seed's mobiles are fictional (+1 555 …) and not stored: give each
	// end user one, as a technician would.
	for i, u := range users {
		m := fmt.Sprintf("+44740%07d", i)
		if _, _, err := st.SetContact(ctx, tgt.tenantID, u.ID, nil, &m, rules.ProvenanceManual); err != nil {
			return 0, err
		}
	}
	reg := connectors.NewRegistry(map[connectors.Kind]func() connectors.Config{connectors.KindAD: func() connectors.Config { return new(ldap.Config) }})
	dirs := &selfserve.ConnectionWriters{Opener: connection.Opener{Registry: reg, Box: secrets}}
	defer dirs.Close()
	box := newCodeBox()
	svc, closeSvc, err := selfServeService(ctx, env, st, dirs, box)
	if err != nil {
		return 0, err
	}
	defer closeSvc()
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	base := srv.URL + "/self-serve/v1/bench-ad"
	work := make(chan store.EndUser)
	errs := make(chan error, unlockStormClients)
	var wg sync.WaitGroup
	start := time.Now()
	for range unlockStormClients {
		wg.Go(func() {
			for u := range work {
				grant, err := verifyOnce(srv.Client(), base, u.UPN, "unlock", box)
				if err == nil {
					err = postJSON(srv.Client(), base+"/unlock", map[string]string{"grant": grant}, nil)
				}
				if err != nil {
					errs <- err
					for range work {
					}
					return
				}
			}
		})
	}
	for _, u := range users {
		work <- u
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)
	select {
	case err := <-errs:
		return 0, err
	default:
	}
	return elapsed, nil
}

// ldapmodifyUnlock writes lockoutTime=0 for users in one ldapmodify over
// one LDAPS connection.
func ldapmodifyUnlock(ctx context.Context, info adInfo, users []store.EndUser) (time.Duration, error) {
	dns, err := userDNs(ctx, info, users)
	if err != nil {
		return 0, err
	}
	var ldif bytes.Buffer
	for _, dn := range dns {
		fmt.Fprintf(&ldif, "dn: %s\nchangetype: modify\nreplace: lockoutTime\nlockoutTime: 0\n-\n\n", dn)
	}
	cmd := exec.CommandContext(ctx, "ldapmodify", "-x", "-H", info.LDAPSURL, "-D", info.BindDN, "-w", info.BindPass)
	cmd.Env = append(os.Environ(), "LDAPTLS_CACERT="+info.CACert)
	cmd.Stdin = &ldif
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("ldapmodify: %v: %s", err, stderr.String())
	}
	return time.Since(start), nil
}

// userDNs looks up the distinguished names of users by sAMAccountName (not
// measured: the baseline is handed its DNs).
func userDNs(ctx context.Context, info adInfo, users []store.EndUser) ([]string, error) {
	var filter strings.Builder
	filter.WriteString("(|")
	for _, u := range users {
		fmt.Fprintf(&filter, "(sAMAccountName=%s)", u.Username)
	}
	filter.WriteString(")")
	cmd := exec.CommandContext(ctx, "ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-x", "-H", info.LDAPSURL, "-D", info.BindDN, "-w", info.BindPass,
		"-b", info.BaseDN, "-E", "pr=500/noprompt", filter.String(), "1.1")
	cmd.Env = append(os.Environ(), "LDAPTLS_CACERT="+info.CACert)
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("ldapsearch: %v", err)
	}
	var dns []string
	for _, line := range strings.Split(string(out), "\n") {
		if dn, ok := strings.CutPrefix(line, "dn: "); ok {
			dns = append(dns, dn)
		}
	}
	if len(dns) != len(users) {
		return nil, fmt.Errorf("found %d DNs for %d users", len(dns), len(users))
	}
	return dns, nil
}
