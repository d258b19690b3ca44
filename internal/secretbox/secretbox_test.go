package secretbox

import (
	"bytes"
	"errors"
	"testing"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func TestSealOpen(t *testing.T) {
	t.Parallel()
	box, err := New(key(1))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := box.Seal([]byte(`{"bind_password":"hunter2"}`), "connection")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("hunter2")) {
		t.Fatal("sealed value contains the plaintext")
	}
	plain, err := box.Open(sealed, "connection")
	if err != nil {
		t.Fatal(err)
	}
	if string(plain) != `{"bind_password":"hunter2"}` {
		t.Fatalf("got %q", plain)
	}
	again, _ := box.Seal(plain, "connection")
	if bytes.Equal(again, sealed) {
		t.Fatal("two seals of the same value are identical: nonce reuse")
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	box, _ := New(key(1))
	other, _ := New(key(2))
	sealed, _ := box.Seal([]byte("secret"), "connection")

	if _, err := other.Open(sealed, "connection"); !errors.Is(err, ErrWrongKey) {
		t.Errorf("wrong key: got %v, want ErrWrongKey", err)
	}
	if _, err := box.Open(sealed, "other-purpose"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("wrong context: got %v, want ErrCorrupt", err)
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	if _, err := box.Open(tampered, "connection"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("tampered: got %v, want ErrCorrupt", err)
	}
	for _, bad := range [][]byte{nil, []byte("x"), []byte("plain text secret that is long enough to pass")} {
		if _, err := box.Open(bad, "connection"); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Open(%q): got %v, want ErrCorrupt", bad, err)
		}
	}
	if _, err := New([]byte("short")); err == nil {
		t.Error("New accepted a 5-byte key")
	}
}
