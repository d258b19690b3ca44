package rules_test

import (
	"fmt"
	"testing"
	"time"

	"selfserve/internal/rules"
)

const (
	dir     = rules.ProvenanceDirectory
	psa     = rules.ProvenancePSA
	manual  = rules.ProvenanceManual
	endUser = rules.ProvenanceEndUser
	none    = rules.ProvenanceNone
)

// field is a stored email or mobile with its provenance.
type field struct {
	v    string
	from rules.Provenance
}

func (f field) String() string { return fmt.Sprintf("%q(%s)", f.v, f.from) }

func TestMergeEntraContact(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name               string
		current            field
		previous, incoming string
		want               field
	}{
		{"Entra-only fills an empty field", field{"", none}, "", "e@x", field{"e@x", dir}},
		{"Entra fills a field emptied by a person", field{"", manual}, "", "e@x", field{"e@x", dir}},
		{"Entra replaces a PSA value", field{"p@x", psa}, "", "e@x", field{"e@x", dir}},
		{"Entra's value equal to the PSA one takes directory provenance", field{"e@x", psa}, "e@x", "e@x", field{"e@x", dir}},
		{"Entra replaces its own earlier value", field{"old@x", dir}, "old@x", "e@x", field{"e@x", dir}},
		{"AD's value is never replaced by Entra's different one", field{"ad@x", dir}, "", "e@x", field{"ad@x", dir}},
		{"AD's value stays when Entra's earlier value was different", field{"ad@x", dir}, "old@x", "e@x", field{"ad@x", dir}},
		{"AD and Entra equal: nothing changes", field{"same@x", dir}, "same@x", "same@x", field{"same@x", dir}},
		{"a technician's value is never replaced", field{"m@x", manual}, "", "e@x", field{"m@x", manual}},
		{"an end user's value is never replaced", field{"u@x", endUser}, "u@x", "e@x", field{"u@x", endUser}},
		{"Entra never clears its own value", field{"old@x", dir}, "old@x", "", field{"old@x", dir}},
		{"Entra never clears a PSA value", field{"p@x", psa}, "", "", field{"p@x", psa}},
		{"empty stays empty", field{"", none}, "", "", field{"", none}},
		{"a legacy value without provenance is kept", field{"l@x", none}, "", "e@x", field{"l@x", none}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, from := rules.MergeEntraContact(tt.current.v, tt.current.from, tt.previous, tt.incoming)
			if got := (field{v, from}); got != tt.want {
				t.Errorf("MergeEntraContact(%s, previous %q, incoming %q) = %s, want %s", tt.current, tt.previous, tt.incoming, got, tt.want)
			}
		})
	}
}

func TestMergeDirectoryContact(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		current   field
		ad        string
		adRefused bool
		linked    []string
		want      field
	}{
		{"AD-only: AD's value", field{"", none}, "ad@x", false, nil, field{"ad@x", dir}},
		{"AD-only: AD clears its own value", field{"ad@x", dir}, "", false, nil, field{"", none}},
		{"AD-only: AD does not clear a PSA value", field{"p@x", psa}, "", false, nil, field{"p@x", psa}},
		{"both, different: AD's value wins", field{"", none}, "ad@x", false, []string{"e@x"}, field{"ad@x", dir}},
		{"both, equal", field{"same@x", dir}, "same@x", false, []string{"same@x"}, field{"same@x", dir}},
		{"AD has none: Entra's value fills", field{"ad@x", dir}, "", false, []string{"e@x"}, field{"e@x", dir}},
		{"AD has none: Entra's value replaces a PSA value", field{"p@x", psa}, "", false, []string{"e@x"}, field{"e@x", dir}},
		{"AD has none: the oldest link with a value fills", field{"", none}, "", false, []string{"", "e1@x", "e2@x"}, field{"e1@x", dir}},
		{"neither has one: cleared", field{"old@x", dir}, "", false, []string{""}, field{"", none}},
		{"AD refused: the stored value stays", field{"old@x", dir}, "bad", true, []string{"e@x"}, field{"old@x", dir}},
		{"AD refused, field empty: Entra's value fills", field{"", none}, "bad", true, []string{"e@x"}, field{"e@x", dir}},
		{"AD refused, no link value: empty stays", field{"", none}, "bad", true, []string{""}, field{"", none}},
		{"a technician's value is never replaced by AD", field{"m@x", manual}, "ad@x", false, []string{"e@x"}, field{"m@x", manual}},
		{"an end user's value is never replaced by Entra", field{"u@x", endUser}, "", false, []string{"e@x"}, field{"u@x", endUser}},
		{"an end user's value is never cleared", field{"u@x", endUser}, "", false, nil, field{"u@x", endUser}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, from := rules.MergeDirectoryContact(tt.current.v, tt.current.from, tt.ad, tt.adRefused, tt.linked)
			if got := (field{v, from}); got != tt.want {
				t.Errorf("MergeDirectoryContact(%s, AD %q refused=%v, linked %q) = %s, want %s", tt.current, tt.ad, tt.adRefused, tt.linked, got, tt.want)
			}
		})
	}
}

// TestHybridOrder checks that an AD page and an Entra page leave the same
// value whichever comes first, once AD has synced after both (an AD page
// re-reads the links), for every stored value while Entra gives one.
func TestHybridOrder(t *testing.T) {
	t.Parallel()
	values := []string{"", "ad1@x", "ad2@x", "e1@x", "e2@x", "p@x"}
	provenances := []rules.Provenance{none, dir, psa, manual, endUser}
	for _, v := range values {
		for _, from := range provenances {
			for _, ad := range []string{"", "ad2@x"} {
				for _, before := range []string{"", "e1@x"} {
					for _, entra := range []string{"e1@x", "e2@x"} {
						// AD first, then Entra, then AD again.
						a, af := rules.MergeDirectoryContact(v, from, ad, false, []string{before})
						a, af = rules.MergeEntraContact(a, af, before, entra)
						a, af = rules.MergeDirectoryContact(a, af, ad, false, []string{entra})
						// Entra first, then AD.
						b, bf := rules.MergeEntraContact(v, from, before, entra)
						b, bf = rules.MergeDirectoryContact(b, bf, ad, false, []string{entra})
						if (field{a, af}) != (field{b, bf}) {
							t.Errorf("stored %s, AD %q, Entra %q then %q: AD first %s, Entra first %s", field{v, from}, ad, before, entra, field{a, af}, field{b, bf})
						}
					}
				}
			}
		}
	}
}

func TestFoldContact(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		current, fold field
		want          field
	}{
		{"a typed value on the azure user wins over AD's", field{"ad@x", dir}, field{"m@x", manual}, field{"m@x", manual}},
		{"a typed value on the azure user wins over a PSA one", field{"p@x", psa}, field{"u@x", endUser}, field{"u@x", endUser}},
		{"a typed value on both: the AD user's stays", field{"m@x", manual}, field{"u@x", endUser}, field{"m@x", manual}},
		{"a typed value on the AD user stays over a directory one", field{"m@x", manual}, field{"e@x", dir}, field{"m@x", manual}},
		{"Entra's value fills an empty field", field{"", none}, field{"e@x", dir}, field{"e@x", dir}},
		{"a PSA value fills an empty field", field{"", none}, field{"p@x", psa}, field{"p@x", psa}},
		{"Entra's value never replaces AD's", field{"ad@x", dir}, field{"e@x", dir}, field{"ad@x", dir}},
		{"a PSA value never replaces AD's", field{"ad@x", dir}, field{"p@x", psa}, field{"ad@x", dir}},
		{"an empty azure value changes nothing", field{"ad@x", dir}, field{"", manual}, field{"ad@x", dir}},
		{"a typed value fills an empty field marked typed", field{"", manual}, field{"u@x", endUser}, field{"u@x", endUser}},
		{"both empty", field{"", none}, field{"", none}, field{"", none}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, from := rules.FoldContact(tt.current.v, tt.current.from, tt.fold.v, tt.fold.from)
			if got := (field{v, from}); got != tt.want {
				t.Errorf("FoldContact(%s, %s) = %s, want %s", tt.current, tt.fold, got, tt.want)
			}
		})
	}
}

func TestFoldStamps(t *testing.T) {
	t.Parallel()
	at := func(day int) *time.Time { d := time.Date(2026, 11, day, 9, 0, 0, 0, time.UTC); return &d }
	tests := []struct {
		name               string
		kept, folded, want rules.SelfServeStamps
	}{
		{"nothing on either", rules.SelfServeStamps{}, rules.SelfServeStamps{}, rules.SelfServeStamps{}},
		{"the switch is on if it was on for the azure user", rules.SelfServeStamps{}, rules.SelfServeStamps{SelfServe: true}, rules.SelfServeStamps{SelfServe: true}},
		{"the switch stays on", rules.SelfServeStamps{SelfServe: true}, rules.SelfServeStamps{}, rules.SelfServeStamps{SelfServe: true}},
		{"first access: the earliest", rules.SelfServeStamps{FirstAccessAt: at(5)}, rules.SelfServeStamps{FirstAccessAt: at(3)}, rules.SelfServeStamps{FirstAccessAt: at(3)}},
		{"first access: the AD user's when earlier", rules.SelfServeStamps{FirstAccessAt: at(2)}, rules.SelfServeStamps{FirstAccessAt: at(3)}, rules.SelfServeStamps{FirstAccessAt: at(2)}},
		{"first access only on the azure user", rules.SelfServeStamps{}, rules.SelfServeStamps{FirstAccessAt: at(3)}, rules.SelfServeStamps{FirstAccessAt: at(3)}},
		{"welcome: the latest", rules.SelfServeStamps{WelcomeSentAt: at(5)}, rules.SelfServeStamps{WelcomeSentAt: at(7)}, rules.SelfServeStamps{WelcomeSentAt: at(7)}},
		{"welcome: the AD user's when later", rules.SelfServeStamps{WelcomeSentAt: at(8)}, rules.SelfServeStamps{WelcomeSentAt: at(7)}, rules.SelfServeStamps{WelcomeSentAt: at(8)}},
		{"welcome only on the AD user", rules.SelfServeStamps{WelcomeSentAt: at(8)}, rules.SelfServeStamps{}, rules.SelfServeStamps{WelcomeSentAt: at(8)}},
	}
	same := func(a, b *time.Time) bool { return a == nil && b == nil || a != nil && b != nil && a.Equal(*b) }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := rules.FoldStamps(tt.kept, tt.folded)
			if got.SelfServe != tt.want.SelfServe || !same(got.FirstAccessAt, tt.want.FirstAccessAt) || !same(got.WelcomeSentAt, tt.want.WelcomeSentAt) {
				t.Errorf("FoldStamps() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestLinkContact(t *testing.T) {
	t.Parallel()
	tests := []struct {
		stored field
		want   string
	}{
		{field{"e@x", dir}, "e@x"},
		{field{"p@x", psa}, ""},
		{field{"m@x", manual}, ""},
		{field{"u@x", endUser}, ""},
		{field{"l@x", none}, ""},
		{field{"", dir}, ""},
	}
	for _, tt := range tests {
		if got := rules.LinkContact(tt.stored.v, tt.stored.from); got != tt.want {
			t.Errorf("LinkContact(%s) = %q, want %q", tt.stored, got, tt.want)
		}
	}
}
