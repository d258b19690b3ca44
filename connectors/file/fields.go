package file

import (
	"cmp"
	"fmt"
	"strings"
	"time"
	"unicode"

	"selfserve/connectors"
)

// field is a column of the file format.
type field int

// The columns, in the order reasons list them.
const (
	fUsername field = iota
	fExternalID
	fUPN
	fFirstName
	fLastName
	fDisplayName
	fEmail
	fMobile
	fEnabled
	fLockedOut
	fLockedOutAt
	fMustChangePassword
	fPasswordLastSet
	fPasswordExpiresAt
	numFields
)

// fieldNames are the column names (CSV header, JSON key) of each field.
var fieldNames = [numFields]string{
	fUsername:           "username",
	fExternalID:         "external_id",
	fUPN:                "upn",
	fFirstName:          "first_name",
	fLastName:           "last_name",
	fDisplayName:        "display_name",
	fEmail:              "email",
	fMobile:             "mobile",
	fEnabled:            "enabled",
	fLockedOut:          "locked_out",
	fLockedOutAt:        "locked_out_at",
	fMustChangePassword: "must_change_password",
	fPasswordLastSet:    "password_last_set",
	fPasswordExpiresAt:  "password_expires_at",
}

// lookupField returns the field a normalised column name names.
func lookupField(name string) (field, bool) {
	for f, n := range fieldNames {
		if n == name {
			return field(f), true
		}
	}
	return 0, false
}

// toUser converts a row's values. It returns every problem of the row, each
// naming the column and the value.
func toUser(v *[numFields]string) (connectors.User, []string) {
	var problems []string
	bad := func(f field, format string, args ...any) {
		problems = append(problems, fieldNames[f]+": "+fmt.Sprintf(format, args...))
	}
	u := connectors.User{
		Username:    v[fUsername],
		ExternalID:  cmp.Or(v[fExternalID], v[fUsername]),
		UPN:         v[fUPN],
		FirstName:   v[fFirstName],
		LastName:    v[fLastName],
		DisplayName: v[fDisplayName],
		Email:       v[fEmail],
		Mobile:      v[fMobile],
	}
	switch {
	case u.Username == "":
		bad(fUsername, "empty; every row needs the account's logon name")
	case strings.ContainsFunc(u.Username, unicode.IsControl):
		bad(fUsername, "%q contains a control character", u.Username)
	}
	if strings.ContainsFunc(v[fExternalID], unicode.IsControl) {
		bad(fExternalID, "%q contains a control character", v[fExternalID])
	}

	boolean := func(f field, def bool) bool {
		b, ok := parseBool(v[f], def)
		if !ok {
			bad(f, "%q is not a boolean; write true or false (or leave it empty for %t)", v[f], def)
		}
		return b
	}
	u.Enabled = boolean(fEnabled, true)
	u.LockedOut = boolean(fLockedOut, false)
	u.MustChangePassword = boolean(fMustChangePassword, false)

	instant := func(f field) time.Time {
		t, problem := parseTime(v[f])
		if problem != "" {
			bad(f, "%q %s", v[f], problem)
		}
		return t
	}
	lockedOutAt := instant(fLockedOutAt)
	if u.LockedOut {
		u.LockedOutAt = lockedOutAt // zero when unknown: the engine stamps it
	}
	u.PasswordLastSet = instant(fPasswordLastSet)
	u.PasswordExpiresAt = instant(fPasswordExpiresAt)
	u.PasswordNeverExpires = v[fPasswordExpiresAt] == ""
	return u, problems
}

// parseBool reads true/false, yes/no, 1/0 in any case; "" gives def.
func parseBool(s string, def bool) (bool, bool) {
	switch strings.ToLower(s) {
	case "":
		return def, true
	case "true", "yes", "1":
		return true, true
	case "false", "no", "0":
		return false, true
	}
	return def, false
}

// parseTime reads an RFC 3339 instant (a space may stand for the T) and
// returns it in UTC; "" gives the zero time. The problem, if any, says what
// the value lacks.
func parseTime(s string) (time.Time, string) {
	if s == "" {
		return time.Time{}, ""
	}
	norm := s
	if len(norm) > 10 && (norm[10] == ' ' || norm[10] == 't') {
		norm = norm[:10] + "T" + norm[11:]
	}
	if t, err := time.Parse(time.RFC3339, strings.ToUpper(norm)); err == nil {
		return t.UTC(), ""
	}
	if _, err := time.Parse("2006-01-02T15:04:05", norm); err == nil {
		return time.Time{}, "has no time zone; add Z for UTC or an offset such as +01:00 (e.g. 2026-12-01T09:00:00Z)"
	}
	if _, err := time.Parse(time.DateOnly, norm); err == nil {
		return time.Time{}, "is a date without a time; write an RFC 3339 instant such as 2026-12-01T09:00:00Z"
	}
	return time.Time{}, "is not an RFC 3339 time such as 2026-12-01T09:00:00Z"
}

// misspeltColumn returns the known column an unknown column name is most
// likely a misspelling of ("emial" → "email", "mobil" → "mobile"): the
// closest by edit distance (insertions, deletions, substitutions and swaps
// of neighbours), if it is at most a third of the known name's length away
// (and at most 2). Other unknown columns (department, office…) are not
// near any known one and are ignored.
func misspeltColumn(name string) (string, bool) {
	best, bestDist := "", -1
	for _, known := range fieldNames {
		d := editDistance(name, known)
		if d == 0 {
			return "", false
		}
		if bestDist < 0 || d < bestDist {
			best, bestDist = known, d
		}
	}
	limit := min(2, max(1, len(best)/3))
	return best, bestDist <= limit
}

// editDistance is the optimal string alignment distance between a and b
// (byte-wise: column names are ASCII).
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
