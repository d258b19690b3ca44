package rules_test

import (
	"fmt"
	"testing"

	"selfserve/internal/rules"
)

func TestMergeContactField(t *testing.T) {
	t.Parallel()
	type value struct {
		v    string
		from rules.Provenance
	}
	tests := []struct {
		current  value
		incoming value
		want     value
	}{
		// Nothing stored: any non-empty import fills the field.
		{current: value{"", none}, incoming: value{"new@x.example", dir}, want: value{"new@x.example", dir}},
		{current: value{"", none}, incoming: value{"", dir}, want: value{"", none}},
		{current: value{"", none}, incoming: value{"new@x.example", psa}, want: value{"new@x.example", psa}},
		{current: value{"", none}, incoming: value{"", psa}, want: value{"", none}},

		// A directory value: the directory replaces and clears it; PSA never
		// overwrites it.
		{current: value{"dir@x.example", dir}, incoming: value{"new@x.example", dir}, want: value{"new@x.example", dir}},
		{current: value{"dir@x.example", dir}, incoming: value{"", dir}, want: value{"", none}},
		{current: value{"dir@x.example", dir}, incoming: value{"new@x.example", psa}, want: value{"dir@x.example", dir}},
		{current: value{"dir@x.example", dir}, incoming: value{"", psa}, want: value{"dir@x.example", dir}},

		// A PSA value: the directory replaces it but does not clear it; a PSA
		// import replaces it and does not clear it.
		{current: value{"psa@x.example", psa}, incoming: value{"new@x.example", dir}, want: value{"new@x.example", dir}},
		{current: value{"psa@x.example", psa}, incoming: value{"", dir}, want: value{"psa@x.example", psa}},
		{current: value{"psa@x.example", psa}, incoming: value{"new@x.example", psa}, want: value{"new@x.example", psa}},
		{current: value{"psa@x.example", psa}, incoming: value{"", psa}, want: value{"psa@x.example", psa}},

		// Human values are never overwritten nor cleared by an import.
		{current: value{"man@x.example", manual}, incoming: value{"new@x.example", dir}, want: value{"man@x.example", manual}},
		{current: value{"man@x.example", manual}, incoming: value{"", dir}, want: value{"man@x.example", manual}},
		{current: value{"man@x.example", manual}, incoming: value{"new@x.example", psa}, want: value{"man@x.example", manual}},
		{current: value{"man@x.example", manual}, incoming: value{"", psa}, want: value{"man@x.example", manual}},
		{current: value{"eu@x.example", endUser}, incoming: value{"new@x.example", dir}, want: value{"eu@x.example", endUser}},
		{current: value{"eu@x.example", endUser}, incoming: value{"", dir}, want: value{"eu@x.example", endUser}},
		{current: value{"eu@x.example", endUser}, incoming: value{"new@x.example", psa}, want: value{"eu@x.example", endUser}},
		{current: value{"eu@x.example", endUser}, incoming: value{"", psa}, want: value{"eu@x.example", endUser}},

		// An empty field marked human holds nothing to protect: imports fill
		// it, and an empty import leaves it empty.
		{current: value{"", manual}, incoming: value{"new@x.example", dir}, want: value{"new@x.example", dir}},
		{current: value{"", manual}, incoming: value{"new@x.example", psa}, want: value{"new@x.example", psa}},
		{current: value{"", endUser}, incoming: value{"new@x.example", psa}, want: value{"new@x.example", psa}},
		{current: value{"", endUser}, incoming: value{"", dir}, want: value{"", none}},

		// The same value from a more authoritative source takes its provenance.
		{current: value{"same@x.example", psa}, incoming: value{"same@x.example", dir}, want: value{"same@x.example", dir}},
		// ... but not from a less authoritative one.
		{current: value{"same@x.example", dir}, incoming: value{"same@x.example", psa}, want: value{"same@x.example", dir}},

		// Values typed by people (normally stored by the API, not merged)
		// replace or clear what an import brought.
		{current: value{"dir@x.example", dir}, incoming: value{"new@x.example", manual}, want: value{"new@x.example", manual}},
		{current: value{"psa@x.example", psa}, incoming: value{"new@x.example", endUser}, want: value{"new@x.example", endUser}},
		{current: value{"dir@x.example", dir}, incoming: value{"", manual}, want: value{"", none}},

		// A legacy value without provenance is replaced by any import.
		{current: value{"old@x.example", none}, incoming: value{"new@x.example", psa}, want: value{"new@x.example", psa}},
		{current: value{"old@x.example", none}, incoming: value{"new@x.example", dir}, want: value{"new@x.example", dir}},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("current %q(%s) incoming %q(%s)", tt.current.v, tt.current.from, tt.incoming.v, tt.incoming.from)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			v, from := rules.MergeContactField(tt.current.v, tt.current.from, tt.incoming.v, tt.incoming.from)
			if got := (value{v, from}); got != tt.want {
				t.Errorf("MergeContactField() = (%q, %q), want (%q, %q)", got.v, got.from, tt.want.v, tt.want.from)
			}
		})
	}
}
