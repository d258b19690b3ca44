package redact

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestSecretNeverPrints(t *testing.T) {
	s := Secret("hunter2")
	j, _ := json.Marshal(struct{ S Secret }{s})
	y, _ := yaml.Marshal(struct{ S Secret }{s})
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%#v", s), fmt.Sprintf("%+v", struct{ S Secret }{s}), s.LogValue().String(), string(j), string(y)} {
		if strings.Contains(out, "hunter2") || !strings.Contains(out, Redacted) {
			t.Errorf("printed %q", out)
		}
	}
	if s.Reveal() != "hunter2" || Secret("").String() != "" {
		t.Errorf("Reveal %q, unset prints %q", s.Reveal(), Secret("").String())
	}
	var back Secret
	if err := json.Unmarshal([]byte(`"k"`), &back); err != nil || back != "k" {
		t.Errorf("UnmarshalJSON: %q %v", back, err)
	}
}
