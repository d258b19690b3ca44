package file

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"selfserve/connectors"
	"selfserve/internal/rules"
)

// The demo's sample data (examples/) is described by this test: the demo and
// its documentation rely on these counts. "Today" for the sample is
// 2026-11-24; the demo shifts the dates.
func TestExampleData(t *testing.T) {
	t.Parallel()
	today := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		path, region, tz string
		users, invalid   int
		// expiring within 1..10 days, on the day, expired earlier, never
		soon, today, expired, never           int
		disabled, locked, mustChange          int
		noMobile, noEmail, national, badPhone int
	}{
		{"../../examples/contoso-local.csv", "GB", "Europe/London", 24, 1, 11, 1, 3, 4, 2, 2, 1, 3, 2, 8, 1},
		{"../../examples/fabrikam-local.json", "US", "America/New_York", 15, 0, 6, 1, 1, 3, 1, 1, 1, 2, 1, 4, 0},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			loc, err := time.LoadLocation(tc.tz)
			if err != nil {
				t.Fatal(err)
			}
			l := listOK(t, openSource(t, Config{Path: tc.path}), "")
			if len(l.users) != tc.users || len(l.invalid) != tc.invalid {
				t.Fatalf("%d users and %d invalid (%v), want %d and %d", len(l.users), len(l.invalid), l.invalid, tc.users, tc.invalid)
			}
			var soon, onDay, expired, never, disabled, locked, mustChange, noMobile, noEmail, national, badPhone int
			for _, u := range l.users {
				switch {
				case u.PasswordNeverExpires:
					never++
				default:
					y, m, d := u.PasswordExpiresAt.In(loc).Date()
					days := int(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Sub(today).Hours() / 24)
					switch {
					case days == 0:
						onDay++
					case days < 0:
						expired++
					case days <= 10:
						soon++
					}
					if u.PasswordLastSet.IsZero() || !u.PasswordLastSet.Before(u.PasswordExpiresAt) {
						t.Errorf("%s: password last set %v, expires %v", u.Username, u.PasswordLastSet, u.PasswordExpiresAt)
					}
				}
				if !u.Enabled {
					disabled++
				}
				if u.LockedOut {
					locked++
					if u.LockedOutAt.IsZero() {
						t.Errorf("%s is locked out without locked_out_at", u.Username)
					}
				}
				if u.MustChangePassword {
					mustChange++
				}
				if u.Email == "" {
					noEmail++
				} else if _, err := rules.NormalizeEmail(u.Email); err != nil || !strings.HasSuffix(u.Email, ".example") {
					t.Errorf("%s: email %q: %v (want a valid address under .example)", u.Username, u.Email, err)
				}
				switch {
				case u.Mobile == "":
					noMobile++
				default:
					if !strings.HasPrefix(u.Mobile, "+") {
						national++
					}
					if _, err := rules.NormalizePhone(u.Mobile, tc.region); err != nil {
						badPhone++
						t.Logf("%s: %v (intended: the sample's invalid phone)", u.Username, err)
					}
				}
			}
			got := fmt.Sprint(soon, onDay, expired, never, disabled, locked, mustChange, noMobile, noEmail, national, badPhone)
			want := fmt.Sprint(tc.soon, tc.today, tc.expired, tc.never, tc.disabled, tc.locked, tc.mustChange, tc.noMobile, tc.noEmail, tc.national, tc.badPhone)
			if got != want {
				t.Errorf("soon, today, expired, never, disabled, locked, must change, no mobile, no email, national, bad phone\n= %s\nwant %s", got, want)
			}
			for _, r := range l.invalid {
				if r.Ref != "row 26" || !strings.Contains(r.Reason, `enabled: "maybe" is not a boolean`) {
					t.Errorf("invalid record %+v, want row 26 with a bad boolean", r)
				}
			}
		})
	}
}

// TestLargeFileStreams lists 100,000 rows and checks that the heap stays far
// below the file's size: pages are handed over and dropped, never gathered.
// What the listing keeps is the duplicate index (usernames and external ids
// seen so far), which grows with the number of rows, not their width.
func TestLargeFileStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("large file")
	}
	const n = 100_000
	for _, tc := range []struct {
		name string
		data []byte
		// maxShare bounds the peak live heap as a share of the file size.
		maxShare float64
	}{
		{"big.csv", genWide(n, false, false), 0.35},
		{"big.json", genWide(n, true, false), 0.35},
		// Distinct external ids double the index.
		{"big-sid.csv", genWide(n, false, true), 0.75},
	} {
		path := writeFile(t, tc.name, tc.data)
		size := len(tc.data)
		tc.data = nil
		src := openSource(t, Config{Path: path})

		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base, allocs0, bytes0 := ms.HeapAlloc, ms.Mallocs, ms.TotalAlloc
		var peak uint64
		users, pages := 0, 0
		start := time.Now()
		for page, err := range src.Users(t.Context(), "") {
			if err != nil {
				t.Fatal(err)
			}
			users += len(page.Users)
			pages++
			if pages%20 == 0 {
				// Live heap while the listing holds its state and one page.
				runtime.GC()
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapAlloc-min(base, ms.HeapAlloc))
			}
		}
		elapsed := time.Since(start)
		runtime.ReadMemStats(&ms)
		if users != n {
			t.Fatalf("%s: %d users, want %d", tc.name, users, n)
		}
		t.Logf("%s: %d rows, %.1f MB file, %d pages in %v (%.0f rows/s); peak live heap +%.1f MB (%.0f bytes/row); %.1f allocations and %.0f bytes allocated per row",
			tc.name, n, float64(size)/1e6, pages, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(),
			float64(peak)/1e6, float64(peak)/n, float64(ms.Mallocs-allocs0)/n, float64(ms.TotalAlloc-bytes0)/n)
		if float64(peak) > tc.maxShare*float64(size) {
			t.Errorf("%s: peak live heap grew by %d bytes for a %d-byte file (limit %.0f%%): the listing holds too much", tc.name, peak, size, 100*tc.maxShare)
		}
	}
}

// genWide returns n rows with every column filled, as a real export has
// them, as CSV or JSON.
func genWide(n int, asJSON, withSID bool) []byte {
	var b strings.Builder
	if asJSON {
		b.WriteString("[\n")
	} else {
		b.WriteString("username,upn,first_name,last_name,display_name,email,mobile,enabled,locked_out,locked_out_at,must_change_password,password_last_set,password_expires_at")
		if withSID {
			b.WriteString(",external_id")
		}
		b.WriteByte('\n')
	}
	for i := range n {
		locked, at := "false", ""
		if i%50 == 0 {
			locked, at = "true", "2026-11-24T08:00:00Z"
		}
		v := []string{
			fmt.Sprintf("user%06d", i), fmt.Sprintf("user%06d@corp.example", i), fmt.Sprintf("First%d", i), fmt.Sprintf("Lastname%d", i),
			fmt.Sprintf("First%d Lastname%d", i, i), fmt.Sprintf("first%d.lastname%d@corp.example", i, i),
			fmt.Sprintf("+44 7400 %06d", i), "true", locked, at, "false", "2026-10-01T09:00:00Z",
			fmt.Sprintf("2026-12-%02dT09:00:00Z", 1+i%28),
		}
		names := append([]string{fieldNames[fUsername]}, fieldNames[fUPN:]...)
		if withSID {
			v = append(v, fmt.Sprintf("S-1-5-21-3623811015-3361044348-30300820-%d", 10000+i))
		}
		if !asJSON {
			b.WriteString(strings.Join(v, ","))
			b.WriteByte('\n')
			continue
		}
		if i > 0 {
			b.WriteString(",\n")
		}
		b.WriteString("  {")
		for f, val := range v {
			if f > 0 {
				b.WriteString(", ")
			}
			name := fieldNames[fExternalID]
			if f < len(names) {
				name = names[f]
			}
			switch name {
			case "enabled", "locked_out", "must_change_password":
				fmt.Fprintf(&b, "%q: %s", name, val)
			default:
				fmt.Fprintf(&b, "%q: %q", name, val)
			}
		}
		b.WriteString("}")
	}
	if asJSON {
		b.WriteString("\n]\n")
	}
	return []byte(b.String())
}

func BenchmarkCSV(b *testing.B) {
	path := writeFile(b, "bench.csv", genCSV(10_000, nil))
	src, err := (&Config{Path: path}).Open(connectors.Env{ID: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, err := range src.(connectors.UserSource).Users(b.Context(), "") {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}
