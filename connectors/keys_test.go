package connectors_test

import (
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"selfserve/connectors"
	"selfserve/connectors/shipped"
)

// TestKeysDeclared: each connector's secrets and endpoint settings are the
// ones its Config declares.
func TestKeysDeclared(t *testing.T) {
	want := map[connectors.Kind]struct{ secrets, endpoint, files []string }{
		connectors.KindAD:          {[]string{"bind_dn", "bind_password"}, []string{"allow_insecure", "ca_file", "server_name", "start_tls", "url"}, []string{"ca_file"}},
		connectors.KindAzure:       {[]string{"client_secret"}, []string{"authority_url", "ca_file", "graph_url"}, []string{"ca_file"}},
		connectors.KindITGlue:      {[]string{"api_key"}, []string{"base_url", "region"}, nil},
		connectors.KindHudu:        {[]string{"api_key"}, []string{"base_url"}, nil},
		connectors.KindConnectWise: {[]string{"private_key", "public_key"}, []string{"base_url", "site"}, nil},
		connectors.KindFile:        {nil, nil, []string{"path"}},
	}
	reg := shipped.Registry()
	for kind, w := range want {
		k, ok := reg.Keys(kind)
		if !ok {
			t.Fatalf("%s unknown", kind)
		}
		if !slices.Equal(k.Secrets, w.secrets) || !slices.Equal(k.Endpoint, w.endpoint) || !slices.Equal(k.Files, w.files) {
			t.Errorf("%s: secrets %v endpoint %v files %v, want %v %v %v", kind, k.Secrets, k.Endpoint, k.Files, w.secrets, w.endpoint, w.files)
		}
		for _, s := range k.Secrets {
			if slices.Contains(k.Settings, s) {
				t.Errorf("%s: %s is both a setting and a secret", kind, s)
			}
		}
	}
}

// TestDecodeKeepsKeysInTheirPlace: a secret under settings, a setting under
// secrets and an unknown key are refused, naming the key (and the known
// ones), never quoting a secret.
func TestDecodeKeepsKeysInTheirPlace(t *testing.T) {
	reg := shipped.Registry()
	cases := []struct {
		kind              connectors.Kind
		settings, secrets string
		field, says       string
	}{
		{connectors.KindAD, `{"url":"ldaps://dc1","bind_password":"hunter2"}`, `{}`, "settings.bind_password", "put bind_password under secrets"},
		{connectors.KindAD, `{"url":"ldaps://dc1","bind_dn":"svc@corp"}`, `{"bind_password":"hunter2"}`, "settings.bind_dn", "put bind_dn under secrets"},
		{connectors.KindHudu, `{"base_url":"https://a.huducloud.com","api_key":"hunter2"}`, `{}`, "settings.api_key", "put api_key under secrets"},
		{connectors.KindAzure, `{"client_secret":"hunter2"}`, `{}`, "settings.client_secret", "put client_secret under secrets"},
		{connectors.KindConnectWise, `{"private_key":"hunter2"}`, `{}`, "settings.private_key", "put private_key under secrets"},
		{connectors.KindITGlue, `{"regoin":"eu"}`, `{}`, "settings.regoin", "known settings: base_url, organization_status_id"},
		{connectors.KindAD, `{}`, `{"bind_pasword":"hunter2"}`, "secrets.bind_pasword", "known secrets: bind_dn, bind_password"},
		{connectors.KindAD, `{}`, `{"url":"ldaps://dc1"}`, "secrets.url", "put url under settings"},
		{connectors.KindFile, `{}`, `{"token":"hunter2"}`, "secrets.token", "known secrets: none"},
		{connectors.KindAD, `{"page_size":"big"}`, `{}`, "settings.page_size", "page_size must be a whole number"},
		{connectors.KindAD, `{}`, `{"bind_password":12345}`, "secrets.bind_password", "bind_password must be a string"},
	}
	for _, c := range cases {
		_, err := reg.Decode(c.kind, json.RawMessage(c.settings), json.RawMessage(c.secrets))
		var ke *connectors.KeyError
		if !errors.As(err, &ke) || ke.Field() != c.field || !strings.Contains(err.Error(), c.says) || !errors.Is(err, connectors.ErrInvalidConfig) {
			t.Errorf("%s %s %s: %v, want a KeyError on %s saying %q", c.kind, c.settings, c.secrets, err, c.field, c.says)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "12345") {
			t.Errorf("%s: the error quotes a secret: %v", c.field, err)
		}
	}
	if _, err := reg.Decode(connectors.KindAD, json.RawMessage(`{"url":"ldaps://dc1"}`), json.RawMessage(`{"bind_password":"pw"}`)); err != nil {
		t.Errorf("keys in their place: %v", err)
	}
	if _, err := reg.Decode(connectors.KindAD, json.RawMessage(`[1]`), nil); !errors.Is(err, connectors.ErrInvalidConfig) {
		t.Errorf("settings not an object: %v", err)
	}
}

// TestStoredSecretsUnderSettings: a connection stored before settings and
// secrets were told apart still opens (the secret is read as a secret), and
// RedactSettings never shows its value.
func TestStoredSecretsUnderSettings(t *testing.T) {
	reg := shipped.Registry()
	settings := json.RawMessage(`{"base_url":"https://acme.huducloud.com","api_key":"hunter2"}`)
	redacted := reg.RedactSettings(connectors.KindHudu, settings)
	if strings.Contains(string(redacted), "hunter2") || !strings.Contains(string(redacted), `"api_key":"[redacted]"`) || !strings.Contains(string(redacted), "acme.huducloud.com") {
		t.Errorf("redacted settings %s", redacted)
	}
	var logs strings.Builder
	src, err := reg.Open(connectors.KindHudu, "7", settings, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("legacy connection: %v", err)
	}
	src.Close()
	if !strings.Contains(logs.String(), "api_key") || strings.Contains(logs.String(), "hunter2") {
		t.Errorf("log %s", logs.String())
	}
}

func TestSettingsEqual(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{`{"a":1,"b":[1,2]}`, `{ "b": [1, 2], "a": 1 }`, true},
		{`{"a":1}`, `{"a":2}`, false},
		{`{"a":1}`, `{"a":1,"b":null}`, false},
		{`{"a":1.0}`, `{"a":1}`, true},
		{`not json`, `not json`, true},
		{`not json`, `{"a":1}`, false},
		{`{"a":1`, `{"a":1 `, false},
		{``, ``, true},
	} {
		if got := connectors.SettingsEqual(json.RawMessage(c.a), json.RawMessage(c.b)); got != c.want {
			t.Errorf("SettingsEqual(%s, %s) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

// TestFieldsDescribeTheForm: each field has the type a form asks for, in
// the order the Config declares it.
func TestFieldsDescribeTheForm(t *testing.T) {
	fields, ok := shipped.Registry().Fields(connectors.KindAD)
	if !ok {
		t.Fatal("ad is not known")
	}
	byKey := map[string]connectors.Field{}
	for _, f := range fields {
		byKey[f.Key] = f
	}
	if fields[0].Key != "url" || !fields[0].Endpoint || fields[0].Type != connectors.FieldString {
		t.Errorf("first field: %+v", fields[0])
	}
	for key, want := range map[string]connectors.FieldType{"start_tls": connectors.FieldBool, "page_size": connectors.FieldNumber,
		"group_dns": connectors.FieldList, "timeout": connectors.FieldText, "bind_password": connectors.FieldString} {
		if got := byKey[key].Type; got != want {
			t.Errorf("%s: type %q, want %q", key, got, want)
		}
	}
	if !byKey["bind_password"].Secret || byKey["base_dn"].Secret || !byKey["ca_file"].File {
		t.Errorf("marks: %+v %+v %+v", byKey["bind_password"], byKey["base_dn"], byKey["ca_file"])
	}
	if _, ok := shipped.Registry().Fields("nope"); ok {
		t.Error("an unknown kind has fields")
	}
}

// TestFieldsHaveHelp: every field of every shipped connector carries a
// short help text (its help tag) for the console's forms.
func TestFieldsHaveHelp(t *testing.T) {
	reg := shipped.Registry()
	for _, kind := range reg.Kinds() {
		fields, _ := reg.Fields(connectors.Kind(kind))
		for _, f := range fields {
			if f.Help == "" || len(f.Help) > 200 || !strings.HasSuffix(f.Help, ".") {
				t.Errorf("%s.%s: help %q, want one or two short sentences", kind, f.Key, f.Help)
			}
		}
	}
	fields, _ := reg.Fields(connectors.KindAD)
	for _, f := range fields {
		if f.Key == "bind_dn" && !strings.Contains(f.Help, `CORP\svc`) {
			t.Errorf("bind_dn's help is not read from its tag as written: %q", f.Help)
		}
	}
}
