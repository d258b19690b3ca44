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
//
// The same table goes to the PSA fill (ApplyContactFills), whose statement
// is its own guard: it must give what the rule gives for a PSA value.
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
	var fills []store.ContactFill
	for _, st := range stored {
		for _, in := range incoming {
			i := len(recs)
			recs = append(recs, user(fmt.Sprintf("u%02d", i), ""))
			cases = append(cases, tcase{name: "PSA fill", current: st.v, currentFrom: st.from, incoming: in})
			fills = append(fills, store.ContactFill{})
			if in != "" {
				fills[len(fills)-1].Email, fills[len(fills)-1].Mobile = &in, &in
			}
		}
	}
	psaRecs := recs[len(writes):]
	applyPage(t, s, f, 2, psaRecs...)
	created := endUsers(t, s, f.tenant.ID)
	for i, r := range psaRecs {
		c := cases[len(writes)+i]
		id := created[r.ExternalID].ID
		_, _, err := s.SetContact(ctx, f.tenant.ID, id, &c.current, &c.current, c.currentFrom)
		must(t, err)
		fills[i].EndUserID = id
	}
	_, err := s.ApplyContactFills(ctx, f.tenant.ID, fills)
	must(t, err)
	after := endUsers(t, s, f.tenant.ID)
	for i, c := range cases {
		from := rules.ProvenanceDirectory
		if c.name == "PSA fill" {
			from = rules.ProvenancePSA
		}
		wantV, wantFrom := rules.MergeContactField(c.current, c.currentFrom, c.incoming, from)
		u := after[recs[i].ExternalID]
		if u.Email != wantV || u.EmailSource != wantFrom || u.Mobile != wantV || u.MobileSource != wantFrom {
			t.Errorf("%s: stored %q(%s), %s brings %q: SQL keeps email %q(%s) mobile %q(%s), rule says %q(%s)",
				c.name, c.current, c.currentFrom, from, c.incoming, u.Email, u.EmailSource, u.Mobile, u.MobileSource, wantV, wantFrom)
		}
	}
}
