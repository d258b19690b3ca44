package admin

import "testing"

func TestDuplicateKey(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		`{}`:                                     "",
		`{"a":1,"b":{"a":2},"c":[{"a":3}]}`:      "",
		`{"self_serve":true,"self_serve":false}`: "self_serve",
		`{"a":{"b":1,"b":2}}`:                    "a.b",
		`{"items":[{"id":1},{"id":2,"id":3}]}`:   "items[1].id",
		`{"a":[[{"x":1,"x":1}]]}`:                "a[0][0].x",
		`{"\u0061":1,"a":2}`:                     "a",
		`{"enabled":true,"Enabled":false}`:       "Enabled",
	}
	for body, want := range cases {
		if got := duplicateKey([]byte(body)); got != want {
			t.Errorf("%s: %q, want %q", body, got, want)
		}
	}
}
