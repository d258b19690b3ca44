// Package secretbox encrypts connection secrets at rest with AES-256-GCM.
//
// A sealed value is: version byte (1) | key id (4 bytes: the first bytes of
// SHA-256 of the key) | nonce (12 bytes) | ciphertext+tag. The key id lets
// Open tell "sealed under another key" apart from "corrupted", so a wrong
// SELFSERVE_ENCRYPTION_KEY is a clear error instead of garbage.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// KeySize is the key length: 32 bytes (AES-256).
const KeySize = 32

const (
	version   = 1
	keyIDSize = 4
	header    = 1 + keyIDSize
)

// Errors returned by Open.
var (
	// ErrWrongKey: the value was sealed under a different key.
	ErrWrongKey = errors.New("secrets were encrypted with a different SELFSERVE_ENCRYPTION_KEY")
	// ErrCorrupt: the value is damaged or not a sealed value at all.
	ErrCorrupt = errors.New("sealed secret is corrupt")
)

// Box seals and opens values under one key.
type Box struct {
	aead  cipher.AEAD
	keyID [keyIDSize]byte
}

// New returns a Box for a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("encryption key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("encryption key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("encryption key: %w", err)
	}
	b := &Box{aead: aead}
	sum := sha256.Sum256(key)
	copy(b.keyID[:], sum[:keyIDSize])
	return b, nil
}

// KeyID returns the public fingerprint of the key, for error messages.
func (b *Box) KeyID() string { return hex.EncodeToString(b.keyID[:]) }

// Seal encrypts plaintext. context binds the value to its purpose: Open with
// another context fails.
func (b *Box) Seal(plaintext []byte, context string) ([]byte, error) {
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	out := make([]byte, 0, header+len(nonce)+len(plaintext)+b.aead.Overhead())
	out = append(out, version)
	out = append(out, b.keyID[:]...)
	out = append(out, nonce...)
	return b.aead.Seal(out, nonce, plaintext, []byte(context)), nil
}

// Open decrypts a value sealed by Seal with the same context.
func (b *Box) Open(sealed []byte, context string) ([]byte, error) {
	ns := b.aead.NonceSize()
	if len(sealed) < header+ns+b.aead.Overhead() || sealed[0] != version {
		return nil, ErrCorrupt
	}
	if [keyIDSize]byte(sealed[1:header]) != b.keyID {
		return nil, fmt.Errorf("%w (sealed under key id %x, configured key id %s)", ErrWrongKey, sealed[1:header], b.KeyID())
	}
	nonce := sealed[header : header+ns]
	plain, err := b.aead.Open(nil, nonce, sealed[header+ns:], []byte(context))
	if err != nil {
		return nil, fmt.Errorf("%w: authentication failed", ErrCorrupt)
	}
	return plain, nil
}
