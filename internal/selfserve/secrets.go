package selfserve

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math/big"
	"strings"
)

// The secrets of the flow: 6-digit codes (kept as HMACs under a key derived
// from the encryption key, so a copy of the database cannot be searched for
// them offline), challenge ids and grants (random, the grant kept as its
// SHA-256).

// keys are the flow's derived keys.
type keys struct {
	code  []byte // HMAC of codes
	decoy []byte // made-up destinations of decoy challenges
}

func deriveKeys(encryptionKey []byte) (keys, error) {
	if len(encryptionKey) < 32 {
		return keys{}, fmt.Errorf("self-serve: the encryption key must be at least 32 bytes, got %d", len(encryptionKey))
	}
	code, err := hkdf.Key(sha256.New, encryptionKey, nil, "selfserve/code/v1", 32)
	if err != nil {
		return keys{}, err
	}
	decoy, err := hkdf.Key(sha256.New, encryptionKey, nil, "selfserve/decoy/v1", 32)
	if err != nil {
		return keys{}, err
	}
	return keys{code: code, decoy: decoy}, nil
}

// codeLength is the length of a code: 6 digits, about 20 bits.
const codeLength = 6

// newCode returns a uniformly random 6-digit code.
func newCode() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return fmt.Sprintf("%06d", n.Int64())
}

// codeHash binds a code to its challenge and channel.
func (k keys) codeHash(challengeID, channel, code string) []byte {
	h := hmac.New(sha256.New, k.code)
	h.Write([]byte(challengeID + "\x00" + channel + "\x00" + code))
	return h.Sum(nil)
}

// validCode reports whether s is exactly six ASCII digits.
func validCode(s string) bool {
	if len(s) != codeLength {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// randomToken returns n random bytes in base64url.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error
	return base64.RawURLEncoding.EncodeToString(b)
}

// grantPrefix marks a grant, so it is recognisable in a leak scan.
const grantPrefix = "ssg_"

// grantLength is the length of a grant: the prefix and 32 random bytes.
var grantLength = len(grantPrefix) + base64.RawURLEncoding.EncodedLen(32)

func newGrant() string { return grantPrefix + randomToken(32) }

// grantHash is what the store keeps of a grant; ok is false when s cannot
// be a grant at all.
func grantHash(s string) (hash []byte, ok bool) {
	if len(s) != grantLength || !strings.HasPrefix(s, grantPrefix) {
		return nil, false
	}
	if _, err := base64.RawURLEncoding.DecodeString(s[len(grantPrefix):]); err != nil {
		return nil, false
	}
	h := sha256.Sum256([]byte(s))
	return h[:], true
}

// challengeIDLength is the length of a challenge id: 16 random bytes.
var challengeIDLength = base64.RawURLEncoding.EncodedLen(16)

// validChallengeID reports whether s can be a challenge id.
func validChallengeID(s string) bool {
	if len(s) != challengeIDLength {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil
}
