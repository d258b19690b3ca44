package link

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	t.Parallel()
	s, err := NewSigner(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewSigner(bytes.Repeat([]byte{2}, 32))
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	tok := s.Sign(3, 42, PurposeConfirmMobile, now.Add(time.Hour))
	c, err := s.Verify(tok, PurposeConfirmMobile, now)
	if err != nil || c.TenantID != 3 || c.EndUserID != 42 || c.Nonce == "" || !c.ExpiresAt().Equal(now.Add(time.Hour)) {
		t.Fatalf("verify: %+v %v", c, err)
	}
	if tok2 := s.Sign(3, 42, PurposeConfirmMobile, now.Add(time.Hour)); tok2 == tok {
		t.Error("two tokens are equal: the nonce does not vary")
	}
	payload, mac, _ := strings.Cut(tok, ".")
	for name, c := range map[string]struct {
		token, purpose string
		at             time.Time
		want           error
	}{
		"expired":       {tok, PurposeConfirmMobile, now.Add(time.Hour), ErrExpired},
		"other key":     {other.Sign(3, 42, PurposeConfirmMobile, now.Add(time.Hour)), PurposeConfirmMobile, now, ErrBadSignature},
		"other purpose": {tok, "reset", now, ErrBadSignature},
		"altered":       {payload[:len(payload)-2] + "AA." + mac, PurposeConfirmMobile, now, ErrBadSignature},
		"no dot":        {payload, PurposeConfirmMobile, now, ErrMalformed},
		"bad base64":    {payload + ".!!", PurposeConfirmMobile, now, ErrMalformed},
		"too long":      {strings.Repeat("a", MaxTokenLength+1), PurposeConfirmMobile, now, ErrMalformed},
		"empty":         {"", PurposeConfirmMobile, now, ErrMalformed},
	} {
		if _, err := s.Verify(c.token, c.purpose, c.at); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	if _, err := NewSigner([]byte("short")); err == nil {
		t.Error("a short key was accepted")
	}
}

// FuzzVerify: arbitrary text never verifies and never panics.
func FuzzVerify(f *testing.F) {
	s, _ := NewSigner(bytes.Repeat([]byte{1}, 32))
	f.Add(s.Sign(1, 2, PurposeConfirmMobile, time.Now().Add(time.Hour)))
	f.Add("a.b")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := s.Verify(token, PurposeConfirmMobile, time.Now())
		if err == nil && (c.TenantID <= 0 || c.EndUserID <= 0) {
			t.Fatalf("verified %q as %+v", token, c)
		}
	})
}
