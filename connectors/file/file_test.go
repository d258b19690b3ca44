package file

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"selfserve/connectors"
	"selfserve/connectors/connectortest"
)

// writeFile writes content to name in a fresh directory and returns its path.
func writeFile(t testing.TB, name string, content []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// openSource opens cfg as the registry would, failing the test on error.
func openSource(t testing.TB, cfg Config) *source {
	t.Helper()
	src, err := cfg.Open(connectors.Env{ID: "test-conn", Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = src.Close() })
	return src.(*source)
}

// listing is what one full iteration yielded.
type listing struct {
	users   []connectors.User
	invalid []connectors.InvalidRecord
	resumes []string
	err     error
}

func list(t testing.TB, src connectors.UserSource, resume string) listing {
	t.Helper()
	var l listing
	for page, err := range src.Users(context.Background(), resume) {
		if err != nil {
			l.err = err
			break
		}
		l.users = append(l.users, page.Users...)
		l.invalid = append(l.invalid, page.Invalid...)
		l.resumes = append(l.resumes, page.Resume)
	}
	return l
}

// listOK lists and fails the test on a listing error.
func listOK(t testing.TB, src connectors.UserSource, resume string) listing {
	t.Helper()
	l := list(t, src, resume)
	if l.err != nil {
		t.Fatalf("listing: %v", l.err)
	}
	return l
}

// genCSV returns a CSV of n users, where the rows listed in bad have a bad
// boolean.
func genCSV(n int, bad map[int]bool) []byte {
	var b strings.Builder
	b.WriteString("username,first_name,last_name,email,mobile,enabled,password_last_set,password_expires_at\n")
	for i := range n {
		enabled := "true"
		if bad[i] {
			enabled = "sometimes"
		}
		fmt.Fprintf(&b, "user%06d,First%d,Last%d,user%06d@example.com,+1 202-555-01%02d,%s,2026-10-01T09:00:00Z,2026-12-%02dT09:00:00Z\n",
			i, i, i, i, i%100, enabled, 1+i%28)
	}
	return []byte(b.String())
}

func genJSON(n int, bad map[int]bool) []byte {
	var b strings.Builder
	b.WriteString("[\n")
	for i := range n {
		if i > 0 {
			b.WriteString(",\n")
		}
		enabled := "true"
		if bad[i] {
			enabled = `"sometimes"`
		}
		fmt.Fprintf(&b, `  {"username": "user%06d", "external_id": "id-%d", "email": "user%06d@example.com", "enabled": %s, "password_expires_at": "2026-12-%02dT09:00:00Z"}`,
			i, i, i, enabled, 1+i%28)
	}
	b.WriteString("\n]\n")
	return []byte(b.String())
}

func TestConformance(t *testing.T) {
	t.Parallel()
	bad := map[int]bool{3: true, 700: true, 1233: true}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"accounts.csv", genCSV(1234, bad)},
		{"accounts.json", genJSON(1234, bad)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, tc.name, tc.data)
			connectortest.RunUserSource(t, connectortest.UserSourceCase{
				Open: func(t *testing.T) connectors.UserSource {
					return openSource(t, Config{Path: path, PageSize: 100})
				},
				WantUsers:   1231,
				WantInvalid: 3,
				MinPages:    13,
			})
		})
	}
}

func TestEveryColumn(t *testing.T) {
	t.Parallel()
	csvData := "username,external_id,upn,first_name,last_name,display_name,email,mobile,enabled,locked_out,locked_out_at,must_change_password,password_last_set,password_expires_at\n" +
		"jdoe,S-1-5-21-1-1001,jdoe@corp.example,Jane,Doe,Jane Doe,jane.doe@corp.example,07400 123456,false,true,2026-11-24T09:12:00+01:00,true,2026-10-13T08:00:00Z,2026-11-24 17:30:00-05:00\n"
	jsonData := `[{"username": "jdoe", "external_id": "S-1-5-21-1-1001", "upn": "jdoe@corp.example", "first_name": "Jane",
	  "last_name": "Doe", "display_name": "Jane Doe", "email": "jane.doe@corp.example", "mobile": "07400 123456",
	  "enabled": false, "locked_out": "true", "locked_out_at": "2026-11-24T09:12:00+01:00", "must_change_password": true,
	  "password_last_set": "2026-10-13T08:00:00Z", "password_expires_at": "2026-11-24 17:30:00-05:00"}]`
	want := connectors.User{
		ExternalID:           "S-1-5-21-1-1001",
		Username:             "jdoe",
		UPN:                  "jdoe@corp.example",
		FirstName:            "Jane",
		LastName:             "Doe",
		DisplayName:          "Jane Doe",
		Email:                "jane.doe@corp.example",
		Mobile:               "07400 123456", // raw: the engine normalises
		Enabled:              false,
		LockedOut:            true,
		LockedOutAt:          time.Date(2026, 11, 24, 8, 12, 0, 0, time.UTC),
		MustChangePassword:   true,
		PasswordLastSet:      time.Date(2026, 10, 13, 8, 0, 0, 0, time.UTC),
		PasswordExpiresAt:    time.Date(2026, 11, 24, 22, 30, 0, 0, time.UTC),
		PasswordNeverExpires: false,
	}
	for name, data := range map[string]string{"all.csv": csvData, "all.json": jsonData} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			l := listOK(t, openSource(t, Config{Path: writeFile(t, name, []byte(data))}), "")
			if len(l.invalid) != 0 || len(l.users) != 1 {
				t.Fatalf("got %d users, invalid %v", len(l.users), l.invalid)
			}
			got := l.users[0]
			w := want
			w.Ref = "row 2"
			if strings.HasSuffix(name, ".json") {
				w.Ref = "object 1"
			}
			if !reflect.DeepEqual(got, w) {
				t.Errorf("got  %+v\nwant %+v", got, w)
			}
			for _, ts := range []time.Time{got.LockedOutAt, got.PasswordLastSet, got.PasswordExpiresAt} {
				if ts.Location() != time.UTC {
					t.Errorf("time %v is not UTC", ts)
				}
			}
		})
	}
}

func TestDefaultsOfOptionalColumns(t *testing.T) {
	t.Parallel()
	data := "username,locked_out_at\nalice,2026-11-20T10:00:00Z\n"
	l := listOK(t, openSource(t, Config{Path: writeFile(t, "min.csv", []byte(data))}), "")
	if len(l.users) != 1 {
		t.Fatalf("got %d users, invalid %v", len(l.users), l.invalid)
	}
	u := l.users[0]
	if u.ExternalID != "alice" || !u.Enabled || u.LockedOut || u.MustChangePassword || !u.PasswordNeverExpires ||
		!u.PasswordExpiresAt.IsZero() || !u.PasswordLastSet.IsZero() || !u.LockedOutAt.IsZero() {
		t.Errorf("defaults wrong: %+v", u)
	}
}

func TestLockedOutWithoutTime(t *testing.T) {
	t.Parallel()
	data := "username,locked_out,locked_out_at\nbob,true,\ncarol,TRUE,2026-11-24T07:00:00Z\n"
	l := listOK(t, openSource(t, Config{Path: writeFile(t, "locked.csv", []byte(data))}), "")
	if len(l.users) != 2 {
		t.Fatalf("got %d users, invalid %v", len(l.users), l.invalid)
	}
	if u := l.users[0]; !u.LockedOut || !u.LockedOutAt.IsZero() {
		t.Errorf("bob: locked %v at %v; want locked, zero time (the engine stamps it)", u.LockedOut, u.LockedOutAt)
	}
	if u := l.users[1]; !u.LockedOut || !u.LockedOutAt.Equal(time.Date(2026, 11, 24, 7, 0, 0, 0, time.UTC)) {
		t.Errorf("carol: locked %v at %v", u.LockedOut, u.LockedOutAt)
	}
}

func TestColumnOrderAndUnknownColumns(t *testing.T) {
	t.Parallel()
	a := "username,email,mobile,enabled,password_expires_at\n" +
		"alice,alice@example.com,+12025550101,true,2026-12-01T09:00:00Z\n" +
		"bob,bob@example.com,,false,\n"
	b := "\"Password Expires At\",Cost Centre,  MOBILE ,Enabled,notes,e-mail address,EMAIL,  UserName  \n" +
		"2026-12-01T09:00:00Z,4711,+12025550101,true,\"free text, with a comma\",x,alice@example.com,alice\n" +
		",4712,,false,,y,bob@example.com,bob\n"
	la := listOK(t, openSource(t, Config{Path: writeFile(t, "a.csv", []byte(a))}), "")
	lb := listOK(t, openSource(t, Config{Path: writeFile(t, "b.csv", []byte(b))}), "")
	if len(la.users) != 2 || len(lb.users) != 2 {
		t.Fatalf("users: %d and %d; invalid %v %v", len(la.users), len(lb.users), la.invalid, lb.invalid)
	}
	for i := range la.users {
		if !reflect.DeepEqual(la.users[i], lb.users[i]) {
			t.Errorf("row %d differs with the columns reordered:\n%+v\n%+v", i+2, la.users[i], lb.users[i])
		}
	}
}

// A misspelt column would import every user without that value and say
// nothing: it fails the listing, naming the column and the closest known one.
func TestMisspeltColumns(t *testing.T) {
	t.Parallel()
	for header, want := range map[string]string{
		"username,emial,mobile":       `unknown column "emial" (column 2): did you mean "email"?`,
		"username,email,mobil":        `unknown column "mobil" (column 3): did you mean "mobile"?`,
		"username,First Nme":          `unknown column "first_nme" (column 2): did you mean "first_name"?`,
		"username,e-mail":             `unknown column "e_mail" (column 2): did you mean "email"?`,
		"username,pasword_expires_at": `unknown column "pasword_expires_at" (column 2): did you mean "password_expires_at"?`,
	} {
		path := writeFile(t, "m.csv", []byte(header+"\nalice,a,b\n"))
		src, err := (&Config{Path: path}).Open(connectors.Env{ID: "c1"})
		if err != nil {
			t.Fatal(err)
		}
		var got error
		for _, err := range src.(connectors.UserSource).Users(context.Background(), "") {
			if err != nil {
				got = err
				break
			}
		}
		_ = src.Close()
		if !errors.Is(got, connectors.ErrInvalidConfig) || !strings.Contains(got.Error(), want) {
			t.Errorf("%s: %v, want %s", header, got, want)
		}
	}
	// Columns not near any known one are still ignored.
	l := listOK(t, openSource(t, Config{Path: writeFile(t, "x.csv", []byte("username,department,office,cost_centre,id\nalice,IT,HQ,1,7\n"))}), "")
	if len(l.users) != 1 || len(l.invalid) != 0 {
		t.Errorf("extra columns: %+v %v", l.users, l.invalid)
	}
}

func TestDelimiters(t *testing.T) {
	t.Parallel()
	for name, data := range map[string]string{
		"semicolon.csv": "username;email;enabled\nalice;alice@example.com;true\n",
		"tab.csv":       "username\temail\tenabled\nalice\talice@example.com\ttrue\n",
		"crlf.csv":      "username,email,enabled\r\nalice,alice@example.com,true\r\n",
	} {
		l := listOK(t, openSource(t, Config{Path: writeFile(t, name, []byte(data))}), "")
		if len(l.users) != 1 || l.users[0].Email != "alice@example.com" || !l.users[0].Enabled {
			t.Errorf("%s: %+v %v", name, l.users, l.invalid)
		}
	}
}

func TestBOM(t *testing.T) {
	t.Parallel()
	bom := "\xEF\xBB\xBF"
	for name, data := range map[string]string{
		"bom.csv":  bom + "username,first_name\nJosé,José\n",
		"bom.json": bom + `[{"username": "José", "first_name": "José"}]`,
	} {
		l := listOK(t, openSource(t, Config{Path: writeFile(t, name, []byte(data))}), "")
		if len(l.users) != 1 || l.users[0].Username != "José" || l.users[0].FirstName != "José" {
			t.Errorf("%s: %+v %v", name, l.users, l.invalid)
		}
	}
}

func utf16Bytes(s string, order binary.AppendByteOrder, bom bool) []byte {
	var out []byte
	units := utf16.Encode([]rune(s))
	if bom {
		units = append([]uint16{0xFEFF}, units...)
	}
	for _, u := range units {
		out = order.AppendUint16(out, u)
	}
	return out
}

func TestWrongEncoding(t *testing.T) {
	t.Parallel()
	text := "username,first_name\nalice,Alice\n"
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"utf16le.csv", utf16Bytes(text, binary.LittleEndian, true), "UTF-16 (little-endian"},
		{"utf16be.csv", utf16Bytes(text, binary.BigEndian, true), "UTF-16 (big-endian)"},
		{"utf16-nobom.csv", utf16Bytes(text, binary.LittleEndian, false), "looks like UTF-16"},
		{"utf16le.json", utf16Bytes(`[{"username":"a"}]`, binary.LittleEndian, true), "UTF-16"},
		// "José" in Latin-1 on the fourth line, after "bob,Jos" (column 8).
		{"latin1.csv", []byte("username,first_name\nalice,Alice\n\nbob,Jos\xE9\ncarol,Carol\n"), `line 4, column 8: byte 0xE9 ("é" in Latin-1) is not UTF-8`},
		{"cp1252.json", []byte("[\n{\"username\": \"alice\"},\n{\"username\": \"\x93bob\x94\"}\n]"), "line 3, column 15: byte 0x93 is not UTF-8"},
		{"nul.csv", []byte("username\nal\x00ice\n"), "line 2, column 3: a NUL byte"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := openSource(t, Config{Path: writeFile(t, tc.name, tc.data)})
			l := list(t, src, "")
			if l.err == nil {
				t.Fatalf("listing succeeded with %d users", len(l.users))
			}
			if len(l.users)+len(l.invalid) != 0 {
				t.Errorf("%d rows were yielded before the encoding error", len(l.users)+len(l.invalid))
			}
			if !errors.Is(l.err, connectors.ErrInvalidConfig) || !strings.Contains(l.err.Error(), tc.want) || !strings.Contains(l.err.Error(), tc.name) {
				t.Errorf("error %q\nwant ErrInvalidConfig naming the file and containing %q", l.err, tc.want)
			}
			if err := src.Ping(context.Background()); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Ping: %v", err)
			}
		})
	}
}

func TestEncodingAcrossBufferBoundaries(t *testing.T) {
	t.Parallel()
	// Multi-byte characters straddle every 64 KiB boundary; the file is
	// valid, and a bad byte far into it is found on the right line.
	var b strings.Builder
	b.WriteString("username,display_name\n")
	for i := range 5000 {
		fmt.Fprintf(&b, "u%d,Zoë Ærøskøbing 日本語 %d\n", i, i)
	}
	good := b.String()
	l := listOK(t, openSource(t, Config{Path: writeFile(t, "utf8.csv", []byte(good))}), "")
	if len(l.users) != 5000 || l.users[4999].DisplayName != "Zoë Ærøskøbing 日本語 4999" {
		t.Fatalf("got %d users; last %+v", len(l.users), l.users[len(l.users)-1])
	}
	bad := good + "late,Caf\xE9\n"
	l = list(t, openSource(t, Config{Path: writeFile(t, "late.csv", []byte(bad))}), "")
	if l.err == nil || !strings.Contains(l.err.Error(), "line 5002, column 9") {
		t.Errorf("error %v, want one naming line 5002, column 9", l.err)
	}
}

func TestMalformedRows(t *testing.T) {
	t.Parallel()
	data := strings.Join([]string{
		"username,external_id,enabled,locked_out,must_change_password,password_last_set,password_expires_at,locked_out_at",
		"good1,,true,false,false,2026-10-01T09:00:00Z,2026-12-01T09:00:00Z,", // row 2
		"badbool,,maybe,false,false,,,",                    // row 3
		"badtime,,true,false,false,2026-13-01T09:00:00Z,,", // row 4
		"nozone,,true,false,false,,2026-12-01T09:00:00,",   // row 5
		"dateonly,,true,false,false,,2026-12-01,",          // row 6
		",,true,false,false,,,",                            // row 7: empty username
		"short,,true",                                      // row 8: too few fields
		"long,,true,false,false,,,,extra",                  // row 9: too many
		"GOOD1,,true,false,false,,,",                       // row 10: duplicate username
		"good2,shared-id,true,false,false,,,",              // row 11
		"good3,shared-id,true,false,false,,,",              // row 12: duplicate external id
		"several,,yes please,nah,,,soon,",                  // row 13: three problems
		`bare"quote,,true,false,false,,,`,                  // row 14
		"badlock,,true,true,false,,,yesterday",             // row 15
		"good4,,1,0,no,,,",                                 // row 16
		"good1alias,good1,true,false,false,,,",             // row 17: id equals row 2's username
	}, "\n") + "\n"
	l := listOK(t, openSource(t, Config{Path: writeFile(t, "bad.csv", []byte(data)), PageSize: 4}), "")
	var names []string
	for _, u := range l.users {
		names = append(names, u.Username)
	}
	if got := strings.Join(names, ","); got != "good1,good2,good4" {
		t.Errorf("valid users %s, want good1,good2,good4", got)
	}
	want := map[string][]string{
		"row 3":  {`enabled: "maybe" is not a boolean`},
		"row 4":  {`password_last_set: "2026-13-01T09:00:00Z" is not an RFC 3339 time`},
		"row 5":  {`password_expires_at: "2026-12-01T09:00:00" has no time zone`},
		"row 6":  {`password_expires_at: "2026-12-01" is a date without a time`},
		"row 7":  {"username: empty"},
		"row 8":  {"the row has 3 fields, the header has 8 columns"},
		"row 9":  {"the row has 9 fields, the header has 8 columns"},
		"row 10": {`username "GOOD1" already appears in row 2`},
		"row 12": {`external_id "shared-id" already appears in row 11`},
		"row 13": {`enabled: "yes please" is not a boolean`, `locked_out: "nah" is not a boolean`, `password_expires_at: "soon" is not an RFC 3339 time`},
		"row 14": {`line 14, column 5: bare " in non-quoted-field`},
		"row 15": {`locked_out_at: "yesterday" is not an RFC 3339 time`},
		"row 17": {`external_id "good1" already appears in row 2`},
	}
	got := map[string]string{}
	for _, r := range l.invalid {
		got[r.Ref] = r.Reason
	}
	for ref, parts := range want {
		reason, ok := got[ref]
		if !ok {
			t.Errorf("%s not reported invalid", ref)
			continue
		}
		for _, p := range parts {
			if !strings.Contains(reason, p) {
				t.Errorf("%s: reason %q lacks %q", ref, reason, p)
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("invalid records: %v", l.invalid)
	}
	if strings.Contains(got["row 10"], "external_id") {
		t.Errorf("row 10 reports its derived external id too: %q", got["row 10"])
	}
	// A row whose key is readable names it (a full sync then keeps its end
	// user); a row that lost its structure (a wrong number of fields may
	// have shifted the columns, a broken quote) has none.
	wantKeys := map[string]string{
		"row 3": "badbool", "row 4": "badtime", "row 5": "nozone", "row 6": "dateonly", "row 7": "", "row 8": "", "row 9": "",
		"row 10": "GOOD1", "row 12": "shared-id", "row 13": "several", "row 14": "", "row 15": "badlock", "row 17": "good1",
	}
	for _, r := range l.invalid {
		if want := wantKeys[r.Ref]; r.ExternalID != want {
			t.Errorf("%s: key %q, want %q", r.Ref, r.ExternalID, want)
		}
	}
}

func TestBlankRowsAndLines(t *testing.T) {
	t.Parallel()
	data := "username,display_name\n\nalice,Alice\n,\n  ,  \nbob,Bob\ncarl,\"multi\nline\"\ndave,Dave,extra\n"
	l := listOK(t, openSource(t, Config{Path: writeFile(t, "blank.csv", []byte(data))}), "")
	var refs []string
	for _, u := range l.users {
		refs = append(refs, u.Username+"@"+u.Ref)
	}
	// csv skips the empty line 2, so "row" (a spreadsheet's numbering)
	// and line differ from then on; ",," rows are skipped silently.
	if got := strings.Join(refs, " "); got != "alice@row 2 (line 3) bob@row 5 (line 6) carl@row 6 (line 7)" {
		t.Errorf("users %q", got)
	}
	if len(l.invalid) != 1 || l.invalid[0].Ref != "row 7 (line 9)" {
		t.Errorf("invalid %v", l.invalid)
	}
}

func TestBrokenQuotingFailsTheRun(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		// An unclosed quote runs to the end of the file.
		"unclosed.csv": "username,email\nalice,a@example.com\n\"bob,b@example.com\ncarol,c@example.com\n",
		// A quote closed two lines later swallows carol's row.
		"swallow.csv": "username,email\nalice,a@example.com\n\"bob,b@example.com\ncarol,c@example.com\"\ndave,d@example.com\n",
	}
	for name, data := range cases {
		l := list(t, openSource(t, Config{Path: writeFile(t, name, []byte(data))}), "")
		if l.err == nil || !errors.Is(l.err, connectors.ErrBadResponse) || !strings.Contains(l.err.Error(), "row 3 (line 3)") {
			t.Errorf("%s: error %v, want ErrBadResponse naming row 3", name, l.err)
		}
	}
}

// A file that breaks part way yields no page at all, so a run applies
// nothing of it, and the error names where it breaks.
func TestBrokenFileYieldsNothing(t *testing.T) {
	t.Parallel()
	csvData := string(genCSV(30000, nil))
	csvData = strings.Replace(csvData, "\nuser024998,", "\n\"user024998,", 1) // row 25000: a quote never closed
	jsonData := string(genJSON(30000, nil))
	jsonData = jsonData[:strings.Index(jsonData, `"user024999"`)+5] // cut inside object 25000
	for name, tc := range map[string]struct {
		data, want string
		maxRows    int
	}{
		"unclosed.csv":   {data: csvData, want: "row 25000 (line 25000)"},
		"truncated.json": {data: jsonData, want: "ends in the middle of object 25000"},
		"toomany.csv":    {data: string(genCSV(1200, nil)), want: "more than max_rows (1000)", maxRows: 1000},
	} {
		t.Run(name, func(t *testing.T) {
			src := openSource(t, Config{Path: writeFile(t, name, []byte(tc.data)), PageSize: 500, MaxRows: tc.maxRows})
			l := list(t, src, "")
			if l.err == nil || !strings.Contains(l.err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", l.err, tc.want)
			}
			if len(l.resumes) != 0 {
				t.Errorf("%d pages yielded before the error, want none", len(l.resumes))
			}
			if err := src.Ping(context.Background()); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Ping: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestMissingUsernameColumn(t *testing.T) {
	t.Parallel()
	cases := map[string]struct{ data, want string }{
		"nouser.csv":  {"Login,E-Mail,mobile\nalice,a@example.com,\n", `has no "username" column; the header row (line 1) has 3 column(s): "login", "e_mail", "mobile"`},
		"semi.csv":    {"user;mail\nalice;a@example.com\n", `has no "username" column; the header row (line 1) has 2 column(s): "user", "mail"`},
		"empty.csv":   {"", "is empty; it needs a header row"},
		"dupcol.csv":  {"username,email,EMAIL\na,b,c\n", `has the column "email" twice (columns 2 and 3)`},
		"nouser.json": {`[{"login": "alice", "mail": "a@example.com"}]`, `object 1 has no "username" key; its keys are: "login", "mail"`},
		"object.json": {`{"users": []}`, "must hold a JSON array of user objects"},
		"empty.json":  {"  \n", "is empty"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src := openSource(t, Config{Path: writeFile(t, name, []byte(tc.data))})
			l := list(t, src, "")
			if l.err == nil || !errors.Is(l.err, connectors.ErrInvalidConfig) || !connectors.IsPermanent(l.err) || !strings.Contains(l.err.Error(), tc.want) {
				t.Errorf("error %v\nwant a permanent ErrInvalidConfig containing %q", l.err, tc.want)
			}
			if err := src.Ping(context.Background()); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Ping: %v", err)
			}
		})
	}
}

func TestJSONForms(t *testing.T) {
	t.Parallel()
	data := `[
  {"UserName": "alice", "external_id": 1001, "enabled": "false", "locked_out": null, "mobile": 447400123456},
  "bob",
  null,
  {},
  {"username": "carol", "email": {"work": "c@example.com"}},
  {"username": "dave", "enabled": "nope", "mobile": ["1", "2"]},
  {"username": "erin", "unknown": {"nested": [1, 2, 3]}, "must_change_password": 1},
  {"username": ["frank"]},
  {"username": ["gina"], "external_id": "g-8"},
  {"username": "hugo", "external_id": {"id": 9}}
]`
	l := listOK(t, openSource(t, Config{Path: writeFile(t, "forms.json", []byte(data))}), "")
	if len(l.users) != 2 {
		t.Fatalf("users %+v", l.users)
	}
	if u := l.users[0]; u.Username != "alice" || u.ExternalID != "1001" || u.Enabled || u.LockedOut || u.Mobile != "447400123456" || u.Ref != "object 1" {
		t.Errorf("alice: %+v", u)
	}
	if u := l.users[1]; u.Username != "erin" || !u.MustChangePassword || u.Ref != "object 7" {
		t.Errorf("erin: %+v", u)
	}
	want := map[string]string{
		"object 2": "expected an object, found a string",
		"object 3": "expected an object, found null",
		"object 5": "email: expected text, found an object",
		"object 6": `enabled: "nope" is not a boolean`,
	}
	got := map[string]string{}
	for _, r := range l.invalid {
		got[r.Ref] = r.Reason
	}
	for ref, w := range want {
		if !strings.Contains(got[ref], w) {
			t.Errorf("%s: reason %q, want %q", ref, got[ref], w)
		}
	}
	if !strings.Contains(got["object 6"], "mobile: expected text, found an array") {
		t.Errorf("object 6: %q lacks the mobile problem", got["object 6"])
	}
	wantKeys := map[string]string{"object 2": "", "object 3": "", "object 5": "carol", "object 6": "dave", "object 8": "", "object 9": "g-8", "object 10": ""}
	for _, r := range l.invalid {
		if want, ok := wantKeys[r.Ref]; !ok || r.ExternalID != want {
			t.Errorf("%s: key %q, want %q", r.Ref, r.ExternalID, want)
		}
	}
	if len(l.invalid) != len(want)+3 {
		t.Errorf("invalid: %v", l.invalid)
	}
}

func TestJSONSyntaxErrorsFailTheRun(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"syntax.json":    "[\n  {\"username\": \"alice\"},\n  {\"username\": \"bob\",,}\n]\n",
		"truncated.json": "[\n  {\"username\": \"alice\"},\n  {\"username\": \"bo",
		"trailing.json":  "[{\"username\": \"alice\"}]\n[{\"username\": \"bob\"}]\n",
	}
	wants := map[string]string{
		"syntax.json":    "line 3: invalid character ',' looking for beginning of object key string (in object 2)",
		"truncated.json": "ends in the middle of object 2",
		"trailing.json":  "more after the array's closing ]",
	}
	for name, data := range cases {
		l := list(t, openSource(t, Config{Path: writeFile(t, name, []byte(data))}), "")
		if l.err == nil || !errors.Is(l.err, connectors.ErrBadResponse) || !strings.Contains(l.err.Error(), wants[name]) {
			t.Errorf("%s: error %v, want ErrBadResponse containing %q", name, l.err, wants[name])
		}
	}
}

func TestPagesAndResume(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"r.csv", "r.json"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			bad := map[int]bool{4: true, 15: true}
			data := genCSV(25, bad)
			first := 2 // CSV: the header is row 1
			if strings.HasSuffix(name, ".json") {
				data, first = genJSON(25, bad), 1
			}
			src := openSource(t, Config{Path: writeFile(t, name, data), PageSize: 10})
			full := listOK(t, src, "")
			wantResumes := []string{fmt.Sprint(first + 9), fmt.Sprint(first + 19), fmt.Sprint(first + 24)}
			if !reflect.DeepEqual(full.resumes, wantResumes) {
				t.Errorf("resumes %v, want %v", full.resumes, wantResumes)
			}
			if len(full.users) != 23 || len(full.invalid) != 2 {
				t.Fatalf("full listing: %d users, %d invalid", len(full.users), len(full.invalid))
			}
			// An interrupted run that committed the first page resumes after it.
			rest := listOK(t, src, full.resumes[0])
			if !reflect.DeepEqual(rest.resumes, wantResumes[1:]) {
				t.Errorf("resumed resumes %v, want %v", rest.resumes, wantResumes[1:])
			}
			if !reflect.DeepEqual(rest.users, full.users[9:]) || !reflect.DeepEqual(rest.invalid, full.invalid[1:]) {
				t.Errorf("resumed listing differs from the tail of the full one:\n%v\n%v", rest.invalid, full.invalid)
			}
			// Resuming after the last page yields nothing, successfully.
			if end := listOK(t, src, full.resumes[2]); len(end.users)+len(end.invalid) != 0 {
				t.Errorf("resume at the end yielded %d users", len(end.users))
			}
			for _, bad := range []string{"999", "abc", "-1"} {
				if l := list(t, src, bad); !errors.Is(l.err, connectors.ErrResyncRequired) {
					t.Errorf("resume %q: error %v, want ErrResyncRequired", bad, l.err)
				}
			}
		})
	}
}

func TestResumeKeepsDuplicateChecks(t *testing.T) {
	t.Parallel()
	data := "username\nalice\nbob\ncarol\nALICE\n"
	src := openSource(t, Config{Path: writeFile(t, "dup.csv", []byte(data)), PageSize: 2})
	l := listOK(t, src, "3")
	if len(l.users) != 1 || l.users[0].Username != "carol" || len(l.invalid) != 1 || !strings.Contains(l.invalid[0].Reason, "already appears in row 2") {
		t.Errorf("after resume: users %+v invalid %v", l.users, l.invalid)
	}
}

func TestCancelMidListing(t *testing.T) {
	t.Parallel()
	src := openSource(t, Config{Path: writeFile(t, "c.csv", genCSV(100, nil)), PageSize: 10})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pages := 0
	var last error
	for _, err := range src.Users(ctx, "") {
		if err != nil {
			last = err
			break
		}
		pages++
		cancel()
	}
	if pages != 1 || !errors.Is(last, context.Canceled) {
		t.Errorf("pages %d, error %v; want 1 page then context.Canceled", pages, last)
	}
}

func TestMaxRows(t *testing.T) {
	t.Parallel()
	src := openSource(t, Config{Path: writeFile(t, "big.csv", genCSV(30, nil)), MaxRows: 25, PageSize: 10})
	l := list(t, src, "")
	if !errors.Is(l.err, connectors.ErrInvalidConfig) || !strings.Contains(l.err.Error(), "more than max_rows (25)") {
		t.Errorf("error %v", l.err)
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	csvPath := writeFile(t, "ok.csv", []byte("username\na\n"))
	txtPath := writeFile(t, "ok.txt", []byte("username\na\n"))
	cases := []struct {
		name string
		cfg  Config
		is   error
		want []string
	}{
		{"everything wrong at once", Config{Format: "xml", PageSize: -1, MaxRows: -5, MaxBytes: -1}, connectors.ErrInvalidConfig,
			[]string{"path is required", `format "xml" is not supported`, "page_size -1 is out of range", "max_rows -5 is out of range", "max_bytes -1 is negative"}},
		{"page size too big", Config{Path: csvPath, PageSize: MaxPageSize + 1}, connectors.ErrInvalidConfig, []string{"page_size 10001 is out of range 1..10000"}},
		{"unknown extension", Config{Path: txtPath}, connectors.ErrInvalidConfig, []string{`the extension ".txt" of ` + txtPath + " says neither .csv nor .json"}},
		{"missing file", Config{Path: filepath.Join(dir, "nope.csv")}, connectors.ErrNotFound, []string{"nope.csv does not exist"}},
		{"missing relative file", Config{Path: "no/such/file.csv"}, connectors.ErrNotFound, []string{"relative paths are read from the working directory"}},
		{"directory", Config{Path: dir, Format: "csv"}, connectors.ErrInvalidConfig, []string{"is a directory"}},
		{"too big", Config{Path: csvPath, MaxBytes: 5}, connectors.ErrInvalidConfig, []string{"more than max_bytes (5)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := tc.cfg.Open(connectors.Env{ID: "c1"})
			if !errors.Is(err, tc.is) {
				t.Fatalf("error %v does not wrap %v", err, tc.is)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	// The format setting overrides the extension.
	if src, err := (&Config{Path: txtPath, Format: "CSV"}).Open(connectors.Env{ID: "c1"}); err != nil {
		t.Errorf("format csv on a .txt file: %v", err)
	} else if err := src.(connectors.Pinger).Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func TestRegistryDecode(t *testing.T) {
	t.Parallel()
	reg := connectors.NewRegistry(map[connectors.Kind]func() connectors.Config{connectors.KindFile: func() connectors.Config { return new(Config) }})
	path := writeFile(t, "r.json", []byte(`[{"username": "a"}]`))
	settings, _ := json.Marshal(map[string]any{"path": path, "page_size": 2})
	src, err := reg.Open(connectors.KindFile, "conn-1", settings, nil, testLogger(t))
	if err != nil {
		t.Fatalf("Registry.Open: %v", err)
	}
	if l := listOK(t, src.(connectors.UserSource), ""); len(l.users) != 1 {
		t.Errorf("users %+v", l.users)
	}
	if _, err := reg.Decode(connectors.KindFile, json.RawMessage(`{"path": "x.csv", "delimiter": ";"}`), nil); err == nil || !strings.Contains(err.Error(), `unknown key "delimiter" (known settings: format, max_bytes, max_rows, page_size, path)`) {
		t.Errorf("unknown setting: %v", err)
	}
}

func TestFileReplacedBetweenListings(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "live.csv", []byte("username\nalice\nbob\n"))
	src := openSource(t, Config{Path: path})
	if l := listOK(t, src, ""); len(l.users) != 2 {
		t.Fatalf("users %d", len(l.users))
	}
	if err := os.WriteFile(path, []byte("username\ncarol\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if l := listOK(t, src, ""); len(l.users) != 1 || l.users[0].Username != "carol" {
		t.Errorf("after rewrite: %+v", l.users)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if l := list(t, src, ""); !errors.Is(l.err, connectors.ErrNotFound) {
		t.Errorf("after removal: %v", l.err)
	}
}
