package apply

import (
	"strings"
	"testing"
)

// A key written twice in one mapping of the apply file is refused, naming
// the key and both lines, whatever the level (yaml.v3 checks this while
// decoding; this test keeps it so).
func TestParseRefusesRepeatedKeys(t *testing.T) {
	t.Parallel()
	cases := map[string]struct{ file, want string }{
		"tenant key": {`
tenants:
  - name: acme
    self_serve: true
    self_serve: false
`, `"self_serve" already defined at line 4`},
		"top level": {`
tenants: []
tenants:
  - name: acme
`, `"tenants" already defined at line 2`},
		"settings": {`
tenants:
  - name: acme
    connections:
      - name: glue
        kind: itglue
        settings: {region: us, region: eu}
`, `line 7: mapping key "region" already defined at line 7`},
		"secrets": {`
tenants:
  - name: acme
    connections:
      - name: glue
        kind: itglue
        secrets:
          api_key: a
          api_key: b
`, `line 9: mapping key "api_key" already defined at line 8`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(c.file))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %s", err, c.want)
			}
		})
	}
}
