package addc

import (
	"context"
	"os"
	"testing"
)

// ForTest starts the DC for t and closes it at t's end. $AD_DIR and
// $AD_BIND_IP, when set, override o.Dir and o.BindIP. Where the DC cannot
// run, t is skipped (see Skip); with -short it is skipped always.
func ForTest(t testing.TB, o Options) Info {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the Samba AD DC: skipped with -short")
	}
	Skip(t, Available())
	if dir := os.Getenv("AD_DIR"); dir != "" {
		o.Dir = dir
	}
	if ip := os.Getenv("AD_BIND_IP"); ip != "" {
		o.BindIP = ip
	}
	dc, err := Start(context.Background(), o)
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
