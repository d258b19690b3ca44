package fakegraph

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// PasswordChange is a password set through PATCH /users/{id} with a
// passwordProfile, as the fake recorded it (a test checks what was sent).
type PasswordChange struct {
	UserID                               string
	Password                             string
	ForceChangePasswordNextSignIn        bool
	ForceChangePasswordNextSignInWithMfa bool
	At                                   time.Time
}

// Graph's error messages for a refused passwordProfile, as Graph words them.
const (
	MessageWeakPassword = "The specified password does not comply with password complexity requirements. Please provide a different password."
	MessageSyncedUser   = "Unable to update the specified properties for on-premises mastered Directory Sync objects or objects currently undergoing migration."
)

// maxPatchBody bounds a PATCH body.
const maxPatchBody = 64 << 10

// PasswordChanges returns the passwords set so far, oldest first.
func (s *Server) PasswordChanges() []PasswordChange {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]PasswordChange(nil), s.passwords...)
}

// RolePasswordWrite is the application permission a PATCH of a
// passwordProfile needs.
const RolePasswordWrite = "User-PasswordProfile.ReadWrite.All"

// DenyPasswordWrites withdraws the User-PasswordProfile.ReadWrite.All
// permission (deny false grants it again): tokens issued from then on do
// not carry the role, and PATCH of a passwordProfile answers 403
// Authorization_RequestDenied, as Graph does without it.
func (s *Server) DenyPasswordWrites(deny bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.passwordWriteDenied = deny
}

// getUser serves GET /users/{id} with $select.
func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	sel, err := parseSelect(query(r)["$select"])
	if badQuery(err, w) {
		return
	}
	id := r.PathValue("function")
	s.mu.Lock()
	u, ok := s.liveUserLocked(id)
	s.mu.Unlock()
	if !ok {
		notFound(w, id)
		return
	}
	b := []byte(`{"@odata.context":`)
	b = appendString(b, s.GraphURL()+"/$metadata#users("+sel.names()+")/$entity")
	b = append(b, ',')
	// appendUser writes a whole object: splice its members after the context
	obj := sel.appendUser(nil, &u)
	b = append(b, obj[1:]...)
	writeBody(w, http.StatusOK, b)
}

// patchUser serves PATCH /users/{id}. Only passwordProfile is served, with
// Graph's rules: 204 on success; 403 without the permission; 404 for an
// unknown user; 400 for a user synced from on-premises, for a password
// Entra's policy refuses, and for a malformed body.
func (s *Server) patchUser(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !strings.HasPrefix(strings.ToLower(r.Header.Get("Content-Type")), "application/json") {
		graphError(w, http.StatusUnsupportedMediaType, "Request_BadRequest", "A supported MIME type could not be found that matches the content type of the request.")
		return
	}
	// The Graph SDKs compress request bodies (kiota's compression
	// handler); Graph accepts Content-Encoding: gzip.
	var in io.Reader = r.Body
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			graphError(w, http.StatusBadRequest, "Request_BadRequest", "The request body is not valid gzip.")
			return
		}
		in = zr
	}
	raw, err := io.ReadAll(io.LimitReader(in, maxPatchBody+1))
	if err != nil || len(raw) > maxPatchBody {
		graphError(w, http.StatusRequestEntityTooLarge, "Request_BadRequest", "The request body is too large.")
		return
	}
	var body struct {
		PasswordProfile *struct {
			Password                             *string `json:"password"`
			ForceChangePasswordNextSignIn        bool    `json:"forceChangePasswordNextSignIn"`
			ForceChangePasswordNextSignInWithMfa bool    `json:"forceChangePasswordNextSignInWithMfa"`
		} `json:"passwordProfile"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		graphError(w, http.StatusBadRequest, "Request_BadRequest", fmt.Sprintf("Invalid request body: %v (fakegraph serves passwordProfile only).", err))
		return
	}
	p := body.PasswordProfile
	if p == nil || p.Password == nil {
		graphError(w, http.StatusBadRequest, "Request_BadRequest", "Invalid value specified for property 'passwordProfile' of resource 'User'.")
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.passwordWriteDenied {
		code, msg := defaultError(http.StatusForbidden)
		graphError(w, http.StatusForbidden, code, msg)
		return
	}
	i, found := s.dir.lookup(id)
	u, live := s.liveUserLocked(id)
	if !found || !live {
		notFound(w, id)
		return
	}
	if u.OnPremisesSyncEnabled {
		graphError(w, http.StatusBadRequest, "Request_BadRequest", MessageSyncedUser)
		return
	}
	if !entraAccepts(*p.Password) {
		graphError(w, http.StatusBadRequest, "Request_BadRequest", MessageWeakPassword)
		return
	}
	now := time.Now().UTC()
	s.passwords = append(s.passwords, PasswordChange{UserID: u.ID, Password: *p.Password,
		ForceChangePasswordNextSignIn: p.ForceChangePasswordNextSignIn, ForceChangePasswordNextSignInWithMfa: p.ForceChangePasswordNextSignInWithMfa, At: now})
	u.LastPasswordChangeDateTime = now.Format(time.RFC3339)
	s.dir.overrides[i] = &u
	s.dir.record(i)
	w.WriteHeader(http.StatusNoContent)
}

// liveUserLocked returns the user with id unless it is deleted.
func (s *Server) liveUserLocked(id string) (User, bool) {
	i, ok := s.dir.lookup(id)
	if !ok {
		return User{}, false
	}
	if _, gone := s.dir.deleted[i]; gone {
		return User{}, false
	}
	return s.dir.at(i), true
}

func notFound(w http.ResponseWriter, id string) {
	graphError(w, http.StatusNotFound, "Request_ResourceNotFound",
		fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", id))
}

// entraSymbols are the symbols Entra ID allows in a password (besides
// letters, digits and space).
const entraSymbols = "@#$%^&*-_!+=[]{}|\\:',.?/`~\"();<>"

// entraAccepts applies Entra ID's documented password rules for cloud
// users: 8 to 256 characters, only A-Z, a-z, 0-9, the symbols above and
// space, and three of lower case, upper case, digits and symbols.
func entraAccepts(p string) bool {
	if n := len([]rune(p)); n < 8 || n > 256 {
		return false
	}
	var lower, upper, digit, symbol bool
	for _, r := range p {
		switch {
		case r >= 'a' && r <= 'z':
			lower = true
		case r >= 'A' && r <= 'Z':
			upper = true
		case r >= '0' && r <= '9':
			digit = true
		case r == ' ' || strings.ContainsRune(entraSymbols, r):
			symbol = true
		default:
			return false
		}
	}
	n := 0
	for _, b := range []bool{lower, upper, digit, symbol} {
		if b {
			n++
		}
	}
	return n >= 3
}
