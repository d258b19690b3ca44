// Package apitoken makes and hashes the bearer tokens of logins. A token is
// shown once when made; only its SHA-256 hash is stored, so a database leak
// does not leak usable tokens.
package apitoken

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// Prefix starts every token, so a leaked token is recognisable (secret
// scanners) and a mistyped one is refused early.
const Prefix = "ss_"

// New returns a fresh random token, its hash to store and a short public
// prefix that identifies it in listings.
func New() (token string, hash []byte, display string) {
	raw := make([]byte, 32)
	_, _ = rand.Read(raw) // crypto/rand.Read never returns an error
	token = Prefix + base64.RawURLEncoding.EncodeToString(raw)
	return token, Hash(token), token[:len(Prefix)+6]
}

// Hash returns the stored form of a token.
func Hash(token string) []byte {
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return sum[:]
}

// LooksValid reports whether s has the shape of a token (cheap pre-check
// before a database lookup).
func LooksValid(s string) bool {
	return strings.HasPrefix(s, Prefix) && len(s) == len(Prefix)+43
}
