package service_test

import (
	"testing"

	"selfserve/internal/service"
)

// TestRealNamesAccepted guards the other side of metacharacter checks: names
// people really give their companies pass.
func TestRealNamesAccepted(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"O'Brien & Sons (UK) Ltd.", "Contoso (UK)", "Müller GmbH", "AT&T", "Yahoo!", "Acme: West"} {
		if err := service.CheckName("name", name, 200); err != nil {
			t.Errorf("%q refused: %v", name, err)
		}
	}
	for _, name := range []string{"admin)(&)", "a)(b", "x(y", "a;b", "a*b", `a\b`, "a=b", "a%b"} {
		if err := service.CheckName("name", name, 200); err == nil {
			t.Errorf("%q accepted", name)
		}
	}
}
