// Package agentproto is the wire protocol between selfserve and its
// on-premises agents: the JSON bodies of /agent/v1 and the request
// signature both sides compute.
//
// An agent authenticates every request with the Ed25519 key it made at
// enrolment (the private half never leaves its machine). The signature
// covers the method, the path, the time, a random nonce and the SHA-256 of
// the body:
//
//	Authorization: Selfserve-Agent id=12,ts=1733390000123,nonce=3q2-7w,sig=BASE64
//	signed text:   "selfserve-agent-v1\n" METHOD "\n" PATH "\n" ts "\n" nonce "\n" hex(sha256(body))
//
// The server refuses a time outside its window (the agent corrects its
// clock from the server's X-Selfserve-Time header), a nonce seen before
// (a replay) and a revoked agent.
package agentproto

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Scheme is the Authorization scheme of signed agent requests.
const Scheme = "Selfserve-Agent"

// HeaderServerTime carries the server's clock (Unix milliseconds) on every
// answer, so an agent whose clock is off can correct its signatures.
const HeaderServerTime = "X-Selfserve-Time"

// MaxSkew is how far a signed request's time may be from the server's.
const MaxSkew = 5 * time.Minute

// Signature is a parsed Authorization header of a signed request.
type Signature struct {
	AgentID int64
	Time    time.Time
	Nonce   string
	Sig     []byte
}

// ErrMalformed: the Authorization header is not a well-formed signature.
var ErrMalformed = errors.New("malformed agent signature")

// Sign returns the Authorization header value for a request of agent id at
// time now.
func Sign(key ed25519.PrivateKey, agentID int64, method, path string, body []byte, now time.Time) string {
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails
	s := Signature{AgentID: agentID, Time: now, Nonce: base64.RawURLEncoding.EncodeToString(nonce)}
	s.Sig = ed25519.Sign(key, s.message(method, path, body))
	return fmt.Sprintf("%s id=%d,ts=%d,nonce=%s,sig=%s", Scheme, s.AgentID, s.Time.UnixMilli(), s.Nonce, base64.RawURLEncoding.EncodeToString(s.Sig))
}

// Parse reads an Authorization header value.
func Parse(header string) (Signature, error) {
	var s Signature
	rest, ok := strings.CutPrefix(header, Scheme+" ")
	if !ok {
		return s, fmt.Errorf("%w: want the %s scheme", ErrMalformed, Scheme)
	}
	seen := 0
	for part := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return s, fmt.Errorf("%w: %q is not key=value", ErrMalformed, part)
		}
		var err error
		switch k {
		case "id":
			s.AgentID, err = strconv.ParseInt(v, 10, 64)
		case "ts":
			var ms int64
			ms, err = strconv.ParseInt(v, 10, 64)
			s.Time = time.UnixMilli(ms)
		case "nonce":
			if len(v) < 16 || len(v) > 64 {
				err = errors.New("bad length")
			}
			s.Nonce = v
		case "sig":
			s.Sig, err = base64.RawURLEncoding.DecodeString(v)
		default:
			return s, fmt.Errorf("%w: unknown key %q", ErrMalformed, k)
		}
		if err != nil {
			return s, fmt.Errorf("%w: %s: %v", ErrMalformed, k, err)
		}
		seen++
	}
	if seen != 4 || s.AgentID <= 0 || len(s.Sig) != ed25519.SignatureSize {
		return s, fmt.Errorf("%w: want id, ts, nonce and sig", ErrMalformed)
	}
	return s, nil
}

// Verify reports whether the signature is key's over this request.
func (s Signature) Verify(key ed25519.PublicKey, method, path string, body []byte) bool {
	return len(key) == ed25519.PublicKeySize && ed25519.Verify(key, s.message(method, path, body), s.Sig)
}

func (s Signature) message(method, path string, body []byte) []byte {
	sum := sha256.Sum256(body)
	return fmt.Appendf(nil, "selfserve-agent-v1\n%s\n%s\n%d\n%s\n%s", method, path, s.Time.UnixMilli(), s.Nonce, hex.EncodeToString(sum[:]))
}
