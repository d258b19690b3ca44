package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"selfserve/connectors"
	"selfserve/connectors/ldap"
	"selfserve/internal/addc"
	"selfserve/internal/connection"
	"selfserve/internal/importer"
	"selfserve/internal/secretbox"
	"selfserve/internal/store"
)

// The benchmark's own Samba AD DC: its own state directory and loopback
// address, so it never disturbs the one the tests use on 127.0.0.1.
const (
	adBenchDir = "selfserve-ad-bench"
	adBenchIP  = "127.0.0.2"
)

// adAttributes are the stored attributes the connector reads of each user
// (see connectors/ldap source.attributes); the raw baseline asks for the
// same.
var adAttributes = []string{"objectGUID", "sAMAccountName", "userPrincipalName", "givenName", "sn", "displayName", "mail", "mobile",
	"userAccountControl", "pwdLastSet", "lockoutTime", "primaryGroupID", "objectSid", "msDS-PSOApplied", "memberOf"}

// adInfo is how to reach the benchmark's DC.
type adInfo = addc.Info

// adOU is the OU holding the size's users: each size gets its own, so the
// 1/10 growth run measures exactly its users.
func adOU(size int) string { return fmt.Sprintf("Bench%d", size) }

// prepareAD starts the benchmark DC, seeds size users into their OU and
// leaves it running for the measurements.
func prepareAD(ctx context.Context, _ *Env, size int) error {
	dc, err := addc.Start(ctx, addc.Options{Dir: filepath.Join(os.TempDir(), adBenchDir), BindIP: adBenchIP,
		Users: size, OU: adOU(size), UserPrefix: fmt.Sprintf("b%du", size), Keep: true})
	if err != nil {
		return err
	}
	return dc.Close()
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// readADInfo reads how to reach the benchmark's DC.
func readADInfo() (adInfo, error) {
	return addc.ReadInfo(filepath.Join(os.TempDir(), adBenchDir))
}

const adFilter = "(&(objectCategory=person)(objectClass=user))"

// ldapsearch runs the raw paged search over LDAPS of filter under the
// size's OU, output discarded, and returns its wall time.
func ldapsearch(ctx context.Context, info adInfo, size int, filter string) (time.Duration, error) {
	args := append([]string{"-LLL", "-o", "ldif-wrap=no", "-x", "-H", info.LDAPSURL, "-D", info.BindDN, "-w", info.BindPass,
		"-b", "OU=" + adOU(size) + "," + info.BaseDN, "-E", "pr=500/noprompt", filter}, adAttributes...)
	cmd := exec.CommandContext(ctx, "ldapsearch", args...)
	cmd.Env = append(os.Environ(), "LDAPTLS_CACERT="+info.CACert)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("ldapsearch: %v: %s", err, stderr.String())
	}
	return time.Since(start), nil
}

// adConnection creates an ad connection to the size's OU in st.
func adConnection(ctx context.Context, st *store.Store, info adInfo, size int) (target, *secretbox.Box, error) {
	box, err := secretbox.New(bytes.Repeat([]byte{7}, secretbox.KeySize))
	if err != nil {
		return target{}, nil, err
	}
	tgt, err := seedTenant(ctx, st, "bench-ad", connectors.KindAD)
	if err != nil {
		return tgt, nil, err
	}
	settings, _ := json.Marshal(map[string]any{"url": info.LDAPSURL, "base_dn": "OU=" + adOU(size) + "," + info.BaseDN, "ca_file": info.CACert, "page_size": 500})
	secrets, _ := json.Marshal(map[string]string{"bind_dn": info.BindDN, "bind_password": info.BindPass})
	sealed, err := connection.Opener{Box: box}.SealSecrets(secrets)
	if err != nil {
		return tgt, nil, err
	}
	conn, err := st.ConnectionByName(ctx, tgt.tenantID, "bench-ad-conn")
	if err != nil {
		return tgt, nil, err
	}
	conn.Settings, conn.SealedSecrets = settings, sealed
	_, _, err = st.UpsertConnection(ctx, conn, false)
	return tgt, box, err
}

func adImporter(st *store.Store, box *secretbox.Box) *importer.Importer {
	return &importer.Importer{MaxRemovalShare: 0.3, Store: st, Secrets: box, Registry: connectors.NewRegistry(map[connectors.Kind]func() connectors.Config{
		connectors.KindAD: func() connectors.Config { return new(ldap.Config) },
	})}
}

// ADFull measures a full import of the size's users into PostgreSQL
// against a raw paged ldapsearch of the same users and attributes.
func ADFull() Scenario {
	return Scenario{
		Name:     "ad-full",
		Baseline: "ldapsearch, paged LDAPS, same users and stored attributes",
		Ours:     "full import into PostgreSQL, committed",
		Size:     10_000, Quick: 300, Unit: "users", Target: 1.25, Growth: true,
		Needs:   []string{"postgres", "samba"},
		Prepare: prepareAD,
		Measure: func(ctx context.Context, env *Env, side Side, size int) (time.Duration, error) {
			return measureADFull(ctx, env, side, size, false)
		},
	}
}

// ADFullSQLite is ADFull into the embedded default's SQLite.
func ADFullSQLite() Scenario {
	s := ADFull()
	s.Name, s.Ours, s.Growth, s.Target = "ad-full-sqlite", "full import into SQLite, committed", false, 0
	s.Measure = func(ctx context.Context, env *Env, side Side, size int) (time.Duration, error) {
		return measureADFull(ctx, env, side, size, true)
	}
	return s
}

func measureADFull(ctx context.Context, env *Env, side Side, size int, sqlite bool) (time.Duration, error) {
	info, err := readADInfo()
	if err != nil {
		return 0, err
	}
	if side == SideBaseline {
		return ldapsearch(ctx, info, size, adFilter)
	}
	st, cleanup, err := openBenchStore(ctx, env, sqlite)
	if err != nil {
		return 0, err
	}
	defer cleanup()
	tgt, box, err := adConnection(ctx, st, info, size)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	res, err := adImporter(st, box).Sync(ctx, importer.Request{TenantID: tgt.tenantID, ConnectionID: tgt.connectionID, Full: true, Trigger: "bench"})
	elapsed := time.Since(start)
	if err != nil {
		return 0, err
	}
	if res.Run.Created+res.Run.Invalid < size {
		return 0, fmt.Errorf("imported %d users (+%d invalid), want %d", res.Run.Created, res.Run.Invalid, size)
	}
	return elapsed, nil
}

func openBenchStore(ctx context.Context, env *Env, sqlite bool) (*store.Store, func(), error) {
	if !sqlite {
		return FreshStore(ctx, env)
	}
	dir, err := os.MkdirTemp(env.TempDir, "sqlite-")
	if err != nil {
		return nil, nil, err
	}
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "bench.db"))
	if err == nil {
		_, err = st.Migrate(ctx)
	}
	if err != nil {
		return nil, nil, err
	}
	return st, func() { st.Close(); os.RemoveAll(dir) }, nil
}

// ADIncremental measures an incremental run after 1% of the users changed
// against a raw ldapsearch of the same changes (uSNChanged above the mark).
func ADIncremental() Scenario {
	return Scenario{
		Name:     "ad-incremental",
		Baseline: "ldapsearch of the changed entries (uSNChanged)",
		Ours:     "incremental run into PostgreSQL, committed",
		Size:     10_000, Quick: 300, Unit: "users", Target: 2,
		Needs:   []string{"postgres", "samba"},
		Prepare: prepareAD,
		Measure: measureADIncremental,
	}
}

func measureADIncremental(ctx context.Context, env *Env, side Side, size int) (time.Duration, error) {
	info, err := readADInfo()
	if err != nil {
		return 0, err
	}
	changed := max(size/100, 1)
	if side == SideBaseline {
		usn, err := highestUSN(ctx, info)
		if err != nil {
			return 0, err
		}
		if err := changeMobiles(ctx, info, size, changed); err != nil {
			return 0, err
		}
		return ldapsearch(ctx, info, size, fmt.Sprintf("(&(objectCategory=person)(objectClass=user)(uSNChanged>=%d))", usn+1))
	}
	st, cleanup, err := FreshStore(ctx, env)
	if err != nil {
		return 0, err
	}
	defer cleanup()
	tgt, box, err := adConnection(ctx, st, info, size)
	if err != nil {
		return 0, err
	}
	im := adImporter(st, box)
	req := importer.Request{TenantID: tgt.tenantID, ConnectionID: tgt.connectionID, Trigger: "bench"}
	if _, err := im.Sync(ctx, req); err != nil {
		return 0, fmt.Errorf("full import before the incremental run: %w", err)
	}
	if err := changeMobiles(ctx, info, size, changed); err != nil {
		return 0, err
	}
	start := time.Now()
	res, err := im.Sync(ctx, req)
	elapsed := time.Since(start)
	if err != nil {
		return 0, err
	}
	if res.Run.Mode != store.ModeIncremental || res.Run.Updated < changed {
		return 0, fmt.Errorf("incremental run: mode %s, %d updated, want %d", res.Run.Mode, res.Run.Updated, changed)
	}
	return elapsed, nil
}

func highestUSN(ctx context.Context, info adInfo) (int64, error) {
	cmd := exec.CommandContext(ctx, "ldapsearch", "-LLL", "-x", "-H", info.LDAPSURL, "-D", info.BindDN, "-w", info.BindPass, "-s", "base", "-b", "", "highestCommittedUSN")
	cmd.Env = append(os.Environ(), "LDAPTLS_CACERT="+info.CACert)
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("read highestCommittedUSN: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "highestCommittedUSN: "); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, errors.New("no highestCommittedUSN in the RootDSE")
}

// changeMobiles gives n evenly spread users of the size's OU a new mobile.
func changeMobiles(ctx context.Context, info adInfo, size, n int) error {
	var ldif strings.Builder
	stamp := time.Now().UnixNano() % 1_000_000
	for i := range n {
		user := i*(size/n) + 1
		fmt.Fprintf(&ldif, "dn: CN=b%du%05d,OU=%s,%s\nchangetype: modify\nreplace: mobile\nmobile: +4474%06d%02d\n\n",
			size, user, adOU(size), info.BaseDN, stamp, i%100)
	}
	cmd := exec.CommandContext(ctx, "ldapmodify", "-x", "-H", info.LDAPSURL, "-D", info.BindDN, "-w", info.BindPass)
	cmd.Env = append(os.Environ(), "LDAPTLS_CACERT="+info.CACert)
	cmd.Stdin = strings.NewReader(ldif.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ldapmodify: %v: %s", err, lastLines(out, 3))
	}
	return nil
}
