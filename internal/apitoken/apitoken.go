// Package apitoken makes and hashes the bearer tokens of the service: login
// tokens, app client tokens and console invites. A token is shown once when
// made; only its SHA-256 hash is stored, so a database leak does not leak
// usable tokens.
package apitoken

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// Kind is a family of tokens, named by the prefix that starts each of them,
// so a leaked token is recognisable (secret scanners) and one of the wrong
// kind or a mistyped one is refused before a database lookup.
type Kind string

// The kinds of token.
const (
	// Login is a login's API token.
	Login Kind = "ss_"
	// AppClient is an app client's token (the self-serve front ends).
	AppClient Kind = "ssapp_"
	// Invite is a single-use console invite.
	Invite Kind = "ssinv_"
)

// randomChars is the length of a token's random part (32 bytes, base64url).
const randomChars = 43

// New returns a fresh random token of kind k, its hash to store and a short
// public prefix that identifies it in listings.
func (k Kind) New() (token string, hash []byte, display string) {
	raw := make([]byte, 32)
	_, _ = rand.Read(raw) // crypto/rand.Read never returns an error
	token = string(k) + base64.RawURLEncoding.EncodeToString(raw)
	return token, Hash(token), token[:len(k)+6]
}

// LooksValid reports whether s has the shape of a token of kind k (cheap
// pre-check before a database lookup).
func (k Kind) LooksValid(s string) bool {
	return strings.HasPrefix(s, string(k)) && len(s) == len(k)+randomChars
}

// Hash returns the stored form of a token of any kind. Surrounding spaces
// do not count (a token never contains one).
func Hash(token string) []byte {
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return sum[:]
}
