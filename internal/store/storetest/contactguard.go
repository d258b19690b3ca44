package storetest

import (
	"context"
	"fmt"
	"testing"

	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// testContactGuard feeds one table of stored values and incoming directory
// values to rules.MergeContactField and to the end-user upsert's guard, and
// asserts they agree:
//
//   - as read: the sync decided from the stored value itself; the guard
//     leaves its decision as it is;
//   - behind its back: the sync read the field empty, and a person or the
//     PSA wrote it before the page was written; the guard alone must give
//     what the rule gives for the stored value.
func testContactGuard(t *testing.T, s *store.Store) {
	ctx := context.Background()
	f := newFixture(t, s, "contactguard")
	stored := []struct {
		v    string
		from rules.Provenance
	}{
		{"", rules.ProvenanceNone}, {"", rules.ProvenanceManual}, {"", rules.ProvenancePSA},
		{"stored@x.example", rules.ProvenanceNone}, {"stored@x.example", rules.ProvenanceDirectory}, {"stored@x.example", rules.ProvenancePSA},
		{"stored@x.example", rules.ProvenanceManual}, {"stored@x.example", rules.ProvenanceEndUser},
	}
	incoming := []string{"", "new@x.example", "stored@x.example"}
	type tcase struct {
		name                  string
		current, asRead       string
		currentFrom, readFrom rules.Provenance
		incoming              string
	}
	var cases []tcase
	for _, st := range stored {
		for _, in := range incoming {
			cases = append(cases,
				tcase{"as read", st.v, st.v, st.from, st.from, in},
				tcase{"behind its back", st.v, "", st.from, rules.ProvenanceNone, in})
		}
	}
	recs := make([]store.UserRecord, len(cases))
	for i := range cases {
		recs[i] = user(fmt.Sprintf("u%02d", i), "")
	}
	applyPage(t, s, f, 1, recs...)
	before := endUsers(t, s, f.tenant.ID)
	writes := make([]store.EndUser, len(cases))
	for i, c := range cases {
		u := before[recs[i].ExternalID]
		_, _, err := s.SetContact(ctx, f.tenant.ID, u.ID, &c.current, &c.current, c.currentFrom)
		must(t, err)
		u.Email, u.EmailSource = rules.MergeContactField(c.asRead, c.readFrom, c.incoming, rules.ProvenanceDirectory)
		u.Mobile, u.MobileSource = u.Email, u.EmailSource
		writes[i] = u
	}
	must(t, s.UpsertEndUsers(ctx, writes))
	after := endUsers(t, s, f.tenant.ID)
	for i, c := range cases {
		wantV, wantFrom := rules.MergeContactField(c.current, c.currentFrom, c.incoming, rules.ProvenanceDirectory)
		u := after[recs[i].ExternalID]
		if u.Email != wantV || u.EmailSource != wantFrom || u.Mobile != wantV || u.MobileSource != wantFrom {
			t.Errorf("%s: stored %q(%s), directory brings %q: SQL keeps email %q(%s) mobile %q(%s), rule says %q(%s)",
				c.name, c.current, c.currentFrom, c.incoming, u.Email, u.EmailSource, u.Mobile, u.MobileSource, wantV, wantFrom)
		}
	}
}
