package agentproto

import (
	"crypto/ed25519"
	"reflect"
	"strings"
	"testing"
	"time"

	"selfserve/connectors"
)

func TestSignVerify(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	body := []byte(`{"seq":1}`)
	h := Sign(key, 7, "POST", "/agent/v1/jobs/3/pages", body, time.Now())
	sig, err := Parse(h)
	if err != nil {
		t.Fatal(err)
	}
	if sig.AgentID != 7 || !sig.Verify(pub, "POST", "/agent/v1/jobs/3/pages", body) {
		t.Fatalf("round trip failed: %+v", sig)
	}
	for name, check := range map[string]func() bool{
		"another body":   func() bool { return sig.Verify(pub, "POST", "/agent/v1/jobs/3/pages", []byte(`{"seq":2}`)) },
		"another path":   func() bool { return sig.Verify(pub, "POST", "/agent/v1/jobs/4/pages", body) },
		"another method": func() bool { return sig.Verify(pub, "GET", "/agent/v1/jobs/3/pages", body) },
		"another key": func() bool {
			other, _, _ := ed25519.GenerateKey(nil)
			return sig.Verify(other, "POST", "/agent/v1/jobs/3/pages", body)
		},
		"short key": func() bool { return sig.Verify(pub[:5], "POST", "/agent/v1/jobs/3/pages", body) },
	} {
		if check() {
			t.Errorf("%s: verified", name)
		}
	}
	if a, b := Sign(key, 7, "POST", "/x", body, time.Now()), Sign(key, 7, "POST", "/x", body, time.Now()); a == b {
		t.Error("two signatures share a nonce")
	}
}

func TestParseMalformed(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	good := Sign(key, 7, "POST", "/x", nil, time.Now())
	for _, h := range []string{
		"", "Bearer x", Scheme + " ", Scheme + " id=7",
		strings.Replace(good, "id=7", "id=-1", 1),
		strings.Replace(good, "id=7", "id=x", 1),
		strings.Replace(good, "ts=", "ts=x", 1),
		strings.Replace(good, "sig=", "sig=AAAA", 1),
		good + ",extra=1",
		strings.Replace(good, "nonce=", "nonce=", 1)[:len(good)-10],
	} {
		if _, err := Parse(h); err == nil {
			t.Errorf("Parse(%q) accepted", h)
		}
	}
}

// TestPageCarriesEveryUserField: a field added to connectors.User must
// cross the wire, or agent syncs would silently lose it.
func TestPageCarriesEveryUserField(t *testing.T) {
	var u connectors.User
	v := reflect.ValueOf(&u).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString("v" + v.Type().Field(i).Name)
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Struct:
			f.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)))
		default:
			t.Fatalf("connectors.User.%s: kind %s not handled by this test", v.Type().Field(i).Name, f.Kind())
		}
	}
	u.SyncedFromOnPremises = false // Entra only: agents read AD and files
	in := connectors.UserPage{Users: []connectors.User{u}, Invalid: []connectors.InvalidRecord{{Ref: "row 3", Reason: "bad", ExternalID: "k"}},
		Removed: []connectors.Removal{{ExternalID: "gone", Permanent: true}}, Resume: "r", Cursor: "c", Privileged: map[string]string{"x": "Domain Admins"}}
	out := FromUserPage(1, in).UserPage()
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("lost on the wire:\n in  %+v\n out %+v", in, out)
	}
}
