package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The demo between 00:00 and 09:00 UTC: sample dates move by each
// customer's own day, and nothing that already happened lands in the
// future.
func TestDemoDatesFollowTheCustomersDay(t *testing.T) {
	t.Parallel()
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	chicago, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 10, 0, 59, 0, 0, time.UTC) // 00:59 in London, 18:59 on the 9th in Chicago
	sample := "username,locked_out,locked_out_at,password_last_set,password_expires_at\n" +
		"a,true,2026-11-24T08:12:00Z,2026-11-24T07:00:00Z,2026-11-27T15:10:00Z\n"
	src := filepath.Join(t.TempDir(), "s.csv")
	if err := os.WriteFile(src, []byte(sample), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name                  string
		loc                   *time.Location
		lockout, set, expires string
	}{
		// London is on the 10th: the lockout of the sample day's morning
		// would be ahead of 00:59, so it is now (a minute ago), still today.
		{"london", london, "2026-12-10T00:58:00Z", "2026-12-10T00:58:00Z", "2026-12-13T15:10:00Z"},
		// Chicago is still on the 9th: dates move by 15 days, not 16, and the
		// lockout (02:12 there) is in the past there.
		{"chicago", chicago, "2026-12-09T08:12:00Z", "2026-12-09T07:00:00Z", "2026-12-12T15:10:00Z"},
	}
	for _, c := range cases {
		dst := filepath.Join(t.TempDir(), c.name+".csv")
		if err := shiftSample(src, dst, sampleMover(now, c.loc)); err != nil {
			t.Fatal(err)
		}
		out, err := os.ReadFile(dst)
		if err != nil {
			t.Fatal(err)
		}
		want := "a,true," + c.lockout + "," + c.set + "," + c.expires
		if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 2 || lines[1] != want {
			t.Errorf("%s: %q, want %q", c.name, out, want)
		}
	}
}
