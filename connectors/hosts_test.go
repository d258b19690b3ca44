package connectors_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"selfserve/connectors"
	"selfserve/connectors/shipped"
)

// TestCheckHost: PSA connections may call their vendor's documented cloud
// hosts, and other hosts only when the operator allows them.
func TestCheckHost(t *testing.T) {
	reg := shipped.Registry()
	allowed := []string{"127.0.0.1", "*.msp.example", "psa.acme.example"}
	cases := []struct {
		kind     connectors.Kind
		settings string
		key      string // "" when allowed
	}{
		{connectors.KindITGlue, `{}`, ""},
		{connectors.KindITGlue, `{"region":"eu"}`, ""},
		{connectors.KindITGlue, `{"base_url":"https://api.au.itglue.com"}`, ""},
		{connectors.KindITGlue, `{"base_url":"https://api.itglue.com.attacker.example"}`, "base_url"},
		{connectors.KindITGlue, `{"base_url":"https://api.itglue.com:8443"}`, "base_url"},
		{connectors.KindITGlue, `{"base_url":"http://127.0.0.1:18080"}`, ""},
		{connectors.KindHudu, `{"base_url":"https://acme.huducloud.com"}`, ""},
		{connectors.KindHudu, `{"base_url":"https://huducloud.com.attacker.example"}`, "base_url"},
		{connectors.KindHudu, `{"base_url":"https://docs.msp.example"}`, ""},
		{connectors.KindHudu, `{"base_url":"https://msp.example"}`, "base_url"},
		{connectors.KindConnectWise, `{"site":"eu"}`, ""},
		{connectors.KindConnectWise, `{"site":"na.myconnectwise.net"}`, ""},
		{connectors.KindConnectWise, `{"site":"cw.attacker.example"}`, "site"},
		{connectors.KindConnectWise, `{"site":"psa.acme.example"}`, ""},
		{connectors.KindConnectWise, `{"base_url":"https://10.0.0.5"}`, "base_url"},
		{connectors.KindAD, `{"url":"ldaps://anywhere.example"}`, ""},
	}
	for _, c := range cases {
		cfg, err := reg.Decode(c.kind, json.RawMessage(c.settings), nil)
		if err != nil {
			t.Fatalf("%s %s: %v", c.kind, c.settings, err)
		}
		err = connectors.CheckHost(cfg, allowed)
		var ke *connectors.KeyError
		switch {
		case c.key == "" && err != nil:
			t.Errorf("%s %s: %v, want allowed", c.kind, c.settings, err)
		case c.key != "" && (!errors.As(err, &ke) || ke.Key != c.key || !strings.Contains(err.Error(), "SELFSERVE_ALLOWED_PSA_HOSTS")):
			t.Errorf("%s %s: %v, want refused naming %s", c.kind, c.settings, err, c.key)
		}
	}
}

func TestCheckHostPattern(t *testing.T) {
	for _, ok := range []string{"127.0.0.1", "::1", "psa.acme.example", "*.acme.example", "Localhost"} {
		if err := connectors.CheckHostPattern(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "https://psa.acme.example", "psa.acme.example:443", "psa.acme.example/x", "*", "*.com", "a..b", "*.*.acme.example"} {
		if err := connectors.CheckHostPattern(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
