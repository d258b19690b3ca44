package addc

import (
	"context"
	"os"
	"testing"
)

// ForTest starts the DC of o.FromEnv() for t and closes it at t's end.
// Where the DC cannot run, t is skipped (see Skip); with -short it is
// skipped always.
func ForTest(t testing.TB, o Options) Info {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the Samba AD DC: skipped with -short")
	}
	Skip(t, Available())
	dc, err := Start(context.Background(), o.FromEnv())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := dc.Close(); err != nil {
			t.Error(err)
		}
	})
	return dc.Info
}

// FromEnv is o with $AD_DIR and $AD_BIND_IP, where set, in place of Dir
// and BindIP: how a test run picks the DC.
func (o Options) FromEnv() Options {
	if dir := os.Getenv("AD_DIR"); dir != "" {
		o.Dir = dir
	}
	if ip := os.Getenv("AD_BIND_IP"); ip != "" {
		o.BindIP = ip
	}
	return o
}

// Skip skips t because of err, the DC being unavailable (see Available),
// or, when $CI is "true", fails it: CI must run what needs the DC. A nil
// err does nothing.
func Skip(t testing.TB, err error) {
	t.Helper()
	switch {
	case err == nil:
	case os.Getenv("CI") == "true":
		t.Fatalf("%v (and CI=true: not skipped)", err)
	default:
		t.Skip(err)
	}
}
