// Package link makes and checks the signed links sent to end users, such as
// the welcome email's "confirm your mobile number" link.
//
// A link token names one end user of one tenant, a purpose, an expiry and a
// random nonce, and carries an HMAC-SHA256 over all of it under a key
// derived (HKDF-SHA256) from selfserve's encryption key, so nobody without
// the key can make or alter one, and the key that seals connection secrets
// is never used directly for anything else. A token is
//
//	base64url(payload) "." base64url(mac)
//
// where payload is a small JSON object. Verify checks the MAC and the
// expiry; single use is the store's business (store.UseLinkToken records
// the nonce in the transaction of the change the link allows).
package link

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// PurposeConfirmMobile is the purpose of the welcome email's link.
const PurposeConfirmMobile = "confirm_mobile"

// DefaultTTL is how long a welcome link stays valid.
const DefaultTTL = 14 * 24 * time.Hour

// MaxTokenLength bounds what Verify reads: longer input is refused before
// any decoding.
const MaxTokenLength = 512

// hkdfInfo binds the derived key to this use.
const hkdfInfo = "selfserve/link-token/v1"

// Errors of Verify.
var (
	// ErrMalformed: the text is not a link token at all.
	ErrMalformed = errors.New("malformed link token")
	// ErrBadSignature: the token was altered or made with another key.
	ErrBadSignature = errors.New("link token signature does not match")
	// ErrExpired: the token is past its expiry.
	ErrExpired = errors.New("link token expired")
)

// Claims is what a token says.
type Claims struct {
	TenantID  int64  `json:"t"`
	EndUserID int64  `json:"u"`
	Purpose   string `json:"p"`
	// Nonce makes every token unique; the store keeps used nonces.
	Nonce string `json:"n"`
	// Expires is a Unix time in seconds.
	Expires int64 `json:"e"`
}

// ExpiresAt returns the expiry as a time.
func (c Claims) ExpiresAt() time.Time { return time.Unix(c.Expires, 0).UTC() }

// Signer makes and checks tokens under one key.
type Signer struct {
	key []byte
}

// NewSigner derives the signing key from the encryption key (at least 32
// bytes).
func NewSigner(encryptionKey []byte) (*Signer, error) {
	if len(encryptionKey) < 32 {
		return nil, fmt.Errorf("link signer: the encryption key must be at least 32 bytes, got %d", len(encryptionKey))
	}
	key, err := hkdf.Key(sha256.New, encryptionKey, nil, hkdfInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("link signer: %w", err)
	}
	return &Signer{key: key}, nil
}

// Sign returns a token for the tenant's end user, valid for the purpose
// until expires.
func (s *Signer) Sign(tenantID, endUserID int64, purpose string, expires time.Time) string {
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce) // crypto/rand.Read never returns an error
	payload, _ := json.Marshal(Claims{
		TenantID: tenantID, EndUserID: endUserID, Purpose: purpose,
		Nonce: base64.RawURLEncoding.EncodeToString(nonce), Expires: expires.Unix(),
	})
	p := base64.RawURLEncoding.EncodeToString(payload)
	return p + "." + base64.RawURLEncoding.EncodeToString(s.mac(p))
}

// Verify checks a token's form, signature, purpose and expiry at now and
// returns its claims. It does not know whether the token was used.
func (s *Signer) Verify(token, purpose string, now time.Time) (Claims, error) {
	if len(token) > MaxTokenLength {
		return Claims{}, fmt.Errorf("%w: longer than %d characters", ErrMalformed, MaxTokenLength)
	}
	p, m, ok := strings.Cut(token, ".")
	if !ok || p == "" || m == "" {
		return Claims{}, fmt.Errorf("%w: want PAYLOAD.SIGNATURE", ErrMalformed)
	}
	mac, err := base64.RawURLEncoding.DecodeString(m)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: the signature is not base64url", ErrMalformed)
	}
	if !hmac.Equal(mac, s.mac(p)) {
		return Claims{}, ErrBadSignature
	}
	payload, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: the payload is not base64url", ErrMalformed)
	}
	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil || c.TenantID <= 0 || c.EndUserID <= 0 || c.Nonce == "" {
		return Claims{}, fmt.Errorf("%w: the payload is incomplete", ErrMalformed)
	}
	if c.Purpose != purpose {
		return Claims{}, fmt.Errorf("%w: made for %q, not %q", ErrBadSignature, c.Purpose, purpose)
	}
	if !now.Before(c.ExpiresAt()) {
		return Claims{}, fmt.Errorf("%w at %s", ErrExpired, c.ExpiresAt().Format(time.RFC3339))
	}
	return c, nil
}

func (s *Signer) mac(payload string) []byte {
	h := hmac.New(sha256.New, s.key)
	h.Write([]byte("v1."))
	h.Write([]byte(payload))
	return h.Sum(nil)
}
