// Package addc runs the project's throw-away Samba Active Directory domain
// controller, scripts/ad-dc.sh, for tests and benchmarks: Start brings it
// up on a loopback address of its own (provisioning it the first time),
// seeds its users and returns how to reach it; Close stops it again if
// Start started it. The state directory outlives the process, so the next
// Start takes about a second.
//
// One Start at a time per state directory, across processes: a DC is
// stopped by whoever started it, which must not pull it from under
// another test binary using it.
package addc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Options say which DC to run and what to seed it with.
type Options struct {
	// Dir is the state directory (AD_DIR).
	Dir string
	// BindIP is the loopback address the DC listens on (AD_BIND_IP): the
	// ports are fixed, so each DC running at the same time needs its own.
	BindIP string
	// Users is how many users Start makes sure exist (ad-dc.sh seed);
	// zero seeds nothing.
	Users int
	// OU is the OU of the seeded users (AD_SEED_OU); empty: the script's
	// Staff.
	OU string
	// UserPrefix is the seeded users' sAMAccountName prefix
	// (AD_USER_PREFIX); empty: the script's "user" (user00001, …).
	UserPrefix string
	// Keep leaves the DC running at Close even if Start started it.
	Keep bool
}

// Info is how to reach a running DC: $AD_DIR/ad-dc.json as ad-dc.sh writes
// it.
type Info struct {
	Dir      string `json:"AD_DIR"`
	LDAPURL  string `json:"AD_LDAP_URL"`
	LDAPSURL string `json:"AD_LDAPS_URL"`
	BaseDN   string `json:"AD_BASE_DN"`
	// UsersDN is the OU of the seeded users.
	UsersDN string `json:"AD_USERS_DN"`
	// BindDN, BindUPN and BindPass are the domain administrator's.
	BindDN   string `json:"AD_BIND_DN"`
	BindUPN  string `json:"AD_BIND_UPN"`
	BindPass string `json:"AD_BIND_PASS"`
	// UserPass is the seeded users' password.
	UserPass string `json:"AD_USER_PASS"`
	Realm    string `json:"AD_REALM"`
	// CACert is the PEM file of the CA that signed the LDAPS certificate.
	CACert string `json:"AD_CA_CERT"`
	// PlainBinds is "allowed" when simple binds over plain LDAP are,
	// "refused" otherwise.
	PlainBinds string `json:"AD_PLAIN_SIMPLE_BIND"`
}

// ErrUnavailable is what Available's error wraps: this machine cannot run
// the DC (not root, or Samba or the OpenLDAP clients not installed).
var ErrUnavailable = errors.New("the Samba AD DC cannot run here")

// Available reports whether this machine can run the DC, and if not why,
// in an error wrapping ErrUnavailable.
func Available() error {
	if uid := os.Geteuid(); uid != 0 {
		return fmt.Errorf("%w: scripts/ad-dc.sh needs root, running as uid %d", ErrUnavailable, uid)
	}
	for _, tool := range []string{"samba", "samba-tool", "ldapsearch"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%w: no %s (apt-get install samba-ad-dc samba-ad-provision ldap-utils)", ErrUnavailable, tool)
		}
	}
	return nil
}

// DC is a running DC started by Start.
type DC struct {
	Info
	script  string
	env     []string
	lock    *os.File
	started bool
	keep    bool
}

// Start waits for other Starts on o.Dir to be closed, brings the DC up
// (if it is not running already), seeds o.Users users and returns it.
// Close it when done.
func Start(ctx context.Context, o Options) (_ *DC, err error) {
	if o.Dir == "" || o.BindIP == "" {
		return nil, errors.New("addc: Options.Dir and Options.BindIP are required")
	}
	if err := Available(); err != nil {
		return nil, err
	}
	script, err := script()
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	d := &DC{script: script, keep: o.Keep, env: append(os.Environ(), "AD_DIR="+dir, "AD_BIND_IP="+o.BindIP)}
	if o.OU != "" {
		d.env = append(d.env, "AD_SEED_OU="+o.OU)
	}
	if o.UserPrefix != "" {
		d.env = append(d.env, "AD_USER_PREFIX="+o.UserPrefix)
	}
	if d.lock, err = os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o600); err != nil {
		return nil, fmt.Errorf("addc: %w", err)
	}
	if err := syscall.Flock(int(d.lock.Fd()), syscall.LOCK_EX); err != nil {
		d.lock.Close()
		return nil, fmt.Errorf("addc: locking %s: %w", d.lock.Name(), err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, d.Close())
		}
	}()
	d.started = d.run(ctx, "status") != nil
	if err := d.run(ctx, "up"); err != nil {
		return d, err
	}
	if o.Users > 0 {
		if err := d.run(ctx, "seed", strconv.Itoa(o.Users)); err != nil {
			return d, err
		}
	}
	if d.Info, err = ReadInfo(dir); err != nil {
		return d, err
	}
	return d, nil
}

// Close stops the DC if Start started it and Options.Keep is not set (the
// database stays for the next Start), and lets the next Start on its
// directory go on.
func (d *DC) Close() error {
	var err error
	if d.started && !d.keep {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err = d.run(ctx, "stop")
	}
	return errors.Join(err, d.lock.Close())
}

// ReadInfo reads how to reach the DC whose state is in dir.
func ReadInfo(dir string) (Info, error) {
	var info Info
	b, err := os.ReadFile(filepath.Join(dir, "ad-dc.json"))
	if err != nil {
		return info, fmt.Errorf("addc: %w", err)
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, fmt.Errorf("addc: %s: %w", filepath.Join(dir, "ad-dc.json"), err)
	}
	return info, nil
}

// run runs ad-dc.sh with args; its error holds the end of the script's
// output.
func (d *DC) run(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "bash", append([]string{d.script}, args...)...)
	cmd.Env = d.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		lines = lines[max(len(lines)-10, 0):]
		return fmt.Errorf("ad-dc.sh %s: %w\n%s", strings.Join(args, " "), err, strings.Join(lines, "\n"))
	}
	return nil
}

// script finds scripts/ad-dc.sh in the module's root, the first directory
// holding go.mod at or above the working directory (a package's directory
// in tests, the repository's root in the benchmarks).
func script() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			path := filepath.Join(dir, "scripts", "ad-dc.sh")
			if _, err := os.Stat(path); err != nil {
				return "", fmt.Errorf("addc: %w", err)
			}
			return path, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("addc: no go.mod at or above the working directory: run from inside the module")
		}
		dir = parent
	}
}
