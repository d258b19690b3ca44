package apitoken

import (
	"bytes"
	"testing"
)

func TestKinds(t *testing.T) {
	for _, k := range []Kind{Login, AppClient, Invite} {
		tok, hash, display := k.New()
		if !k.LooksValid(tok) || !bytes.Equal(hash, Hash(tok)) || !bytes.Equal(Hash(" "+tok+"\n"), hash) || display != tok[:len(k)+6] {
			t.Errorf("%s: token %q display %q", k, tok, display)
		}
		for _, other := range []Kind{Login, AppClient, Invite} {
			if other != k && other.LooksValid(tok) {
				t.Errorf("a %s token looks like a %s token", k, other)
			}
		}
		if k.LooksValid(tok[:len(tok)-1]) {
			t.Errorf("%s: a short token looks valid", k)
		}
	}
}
