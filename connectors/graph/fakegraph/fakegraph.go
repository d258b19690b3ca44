// Package fakegraph is a fake Microsoft Graph v1.0 and Microsoft identity
// platform (token endpoint) server for tests, benchmarks and the demo. It is a
// real HTTPS server (httptest) that follows the documented wire format:
//
//   - GET  /{tenant}/v2.0/.well-known/openid-configuration
//   - POST /{tenant}/oauth2/v2.0/token (client credentials; AADSTS errors)
//   - GET  /v1.0/users ($select, $top 1..999, absolute @odata.nextLink)
//   - GET  /v1.0/users/delta (initial round, $deltatoken=latest, change
//     rounds with @removed entries, @odata.deltaLink, 410 for stale tokens)
//   - GET  /v1.0/users/{id} ($select)
//   - PATCH /v1.0/users/{id} with a passwordProfile (204; 400 for a weak
//     password or a user synced from on-premises; 403 after
//     DenyPasswordWrites), recorded for PasswordChanges
//   - GET  /v1.0/users/{id}/authentication/phoneMethods
//   - GET  /v1.0/domains, GET /v1.0/organization
//   - GET  /v1.0/roleManagement/directory/roleDefinitions and
//     roleAssignments (paged): see roles.go, AssignRole
//
// Errors use Graph's envelope {"error":{"code","message"}}. Faults (429 with
// Retry-After, 401/403, 5xx, HTML pages, truncated bodies) are injected with
// InjectFault. Users are generated from a seed and a count, so a 100,000-user
// tenant costs next to no memory; tests add, change and delete users between
// calls and delta queries report exactly those changes.
//
// The package uses only the standard library: it must not import the Graph
// SDK, so that tests of other packages can use it cheaply.
package fakegraph

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure a Server. Zero values take the defaults given.
type Options struct {
	// TenantID is the directory (tenant) id. Default DefaultTenantID.
	TenantID string
	// ClientID is the application (client) id. Default DefaultClientID.
	ClientID string
	// ClientSecret is the secret the token endpoint accepts. Default
	// DefaultClientSecret.
	ClientSecret string
	// Seed makes the generated users reproducible. Default 1.
	Seed int64
	// Users is the number of generated users. Default 0.
	Users int
	// Domains are the tenant's domains; generated users take them in turn.
	// Default DefaultDomains().
	Domains []Domain
	// DeltaPageSize is the number of entries per /users/delta page (Graph
	// ignores $top on delta). Default 200.
	DeltaPageSize int
	// Now is the reference time of generated password dates. Default
	// 2026-06-01T00:00:00Z.
	Now time.Time
	// TokenLifetime is the lifetime of issued access tokens. Default 1h.
	TokenLifetime time.Duration
}

// Defaults of Options.
const (
	DefaultTenantID     = "7d3c0a52-5c1e-4b8e-9a51-2f0c6f1e9b10"
	DefaultClientID     = "0f8b5a3e-2c4d-4e6f-8a9b-1c2d3e4f5a6b"
	DefaultClientSecret = "fake-secret~not-a-real-one"
)

// Fault is a failure served instead of a Graph (/v1.0) response.
type Fault struct {
	// After is how many matching requests are served normally before the
	// fault starts (0: the next matching request fails).
	After int
	// Times is how many consecutive matching requests fail; 0 means 1 and a
	// negative value means every one from then on.
	Times int
	// Path restricts the fault to request paths with this prefix, for
	// example "/v1.0/users/delta". Empty matches every Graph request.
	Path string

	// Status is the HTTP status (429, 401, 403, 500, 503...). With
	// Truncate it defaults to 200.
	Status int
	// RetryAfter, when positive, is sent as Retry-After in whole seconds
	// (rounded up).
	RetryAfter time.Duration
	// Code and Message fill Graph's error envelope; they default to what
	// Graph sends for Status.
	Code, Message string
	// HTML serves an HTML error page (as a proxy or gateway would) instead
	// of the JSON envelope.
	HTML bool
	// Truncate serves the normal response body cut in half, with a
	// Content-Length that matches the cut body.
	Truncate bool
}

// Server is a running fake. Close it when done.
type Server struct {
	srv  *httptest.Server
	opts Options

	mu       sync.Mutex
	dir      *directory
	tokens   map[string]time.Time // access token -> expiry
	epoch    int                  // delta tokens of older epochs are stale
	faults   []*activeFault
	seen     int            // Graph requests so far
	requests map[string]int // route -> count

	passwords           []PasswordChange
	passwordWriteDenied bool

	roles   []roleAssignment // directory role assignments (roles.go)
	roleSeq int
}

type activeFault struct {
	Fault
	skipped, served int
}

// New starts a fake on a loopback HTTPS address.
func New(opts Options) *Server {
	if opts.TenantID == "" {
		opts.TenantID = DefaultTenantID
	}
	if opts.ClientID == "" {
		opts.ClientID = DefaultClientID
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = DefaultClientSecret
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.Domains == nil {
		opts.Domains = DefaultDomains()
	}
	if opts.DeltaPageSize <= 0 {
		opts.DeltaPageSize = 200
	}
	if opts.Now.IsZero() {
		opts.Now = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = time.Hour
	}
	s := &Server{
		opts:     opts,
		dir:      newDirectory(opts.Seed, opts.Users, append([]Domain(nil), opts.Domains...), opts.Now),
		tokens:   map[string]time.Time{},
		requests: map[string]int{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", s.openIDConfiguration)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.token)
	mux.HandleFunc("GET /v1.0/users", s.graph("users", s.listUsers))
	// /users/delta, /users/delta(), /users/microsoft.graph.delta(): Graph
	// accepts the function's short and qualified names.
	// GET /users/{id} shares the pattern.
	delta, user := s.graph("users/delta", s.delta), s.graph("user", s.getUser)
	mux.HandleFunc("GET /v1.0/users/{function}", func(w http.ResponseWriter, r *http.Request) {
		if isDeltaFunction(r.PathValue("function")) {
			delta(w, r)
			return
		}
		user(w, r)
	})
	mux.HandleFunc("PATCH /v1.0/users/{id}", s.graph("patchUser", s.patchUser))
	mux.HandleFunc("GET /v1.0/users/{id}/authentication/phoneMethods", s.graph("phoneMethods", s.phoneMethods))
	mux.HandleFunc("GET /v1.0/domains", s.graph("domains", s.domains))
	mux.HandleFunc("GET /v1.0/roleManagement/directory/roleDefinitions", s.graph("roleDefinitions", s.roleDefinitions))
	mux.HandleFunc("GET /v1.0/roleManagement/directory/roleAssignments", s.graph("roleAssignments", s.roleAssignments))
	mux.HandleFunc("GET /v1.0/organization", s.graph("organization", s.organization))
	unknown := s.graph("other", func(w http.ResponseWriter, r *http.Request) {
		graphError(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Resource not found for the segment '%s'.", strings.TrimPrefix(r.URL.Path, "/v1.0/")))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1.0/") {
			unknown(w, r)
			return
		}
		http.NotFound(w, r)
	})
	s.srv = httptest.NewUnstartedServer(mux)
	// Clients that refuse the certificate are expected in tests: keep the
	// handshake errors out of the test output.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.StartTLS()
	return s
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// GraphURL is the Graph base URL ("https://127.0.0.1:port/v1.0"), the
// connector's graph_url.
func (s *Server) GraphURL() string { return s.srv.URL + "/v1.0" }

// AuthorityURL is the identity platform's base URL, the connector's
// authority_url; tokens come from {AuthorityURL}/{tenant}/oauth2/v2.0/token.
func (s *Server) AuthorityURL() string { return s.srv.URL }

// TenantID returns the tenant id the server accepts.
func (s *Server) TenantID() string { return s.opts.TenantID }

// ClientID returns the client id the server accepts.
func (s *Server) ClientID() string { return s.opts.ClientID }

// ClientSecret returns the client secret the server accepts.
func (s *Server) ClientSecret() string { return s.opts.ClientSecret }

// Client returns an http.Client that trusts the server's certificate.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// CACertPEM returns the server certificate in PEM, to trust it as a CA.
func (s *Server) CACertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
}

// WriteCAFile writes CACertPEM to dir and returns the file's path (the
// connector's ca_file).
func (s *Server) WriteCAFile(dir string) (string, error) {
	path := filepath.Join(dir, "fakegraph-ca.pem")
	return path, os.WriteFile(path, s.CACertPEM(), 0o600)
}

// IssueToken returns a valid access token without the OAuth round trip, for
// clients that talk to Graph directly (benchmarks).
func (s *Server) IssueToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueLocked()
}

// RevokeTokens invalidates every access token issued so far: Graph then
// answers 401 InvalidAuthenticationToken.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// ExpireDeltaTokens makes every delta and skip token issued so far stale:
// using one gets 410 Gone with code syncStateNotFound.
func (s *Server) ExpireDeltaTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epoch++
}

// InjectFault queues a fault. Faults apply in the order injected; the first
// that matches a request serves it.
func (s *Server) InjectFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &activeFault{Fault: f})
}

// ClearFaults removes every queued fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Requests returns how many requests a route has served: "token", "users",
// "users/delta", "user", "patchUser", "phoneMethods", "domains",
// "organization" or "other".
func (s *Server) Requests(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[route]
}

// UserAt returns the user at index i (generated users are 0..Users-1, added
// ones follow), deleted or not.
func (s *Server) UserAt(i int) User {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dir.at(i)
}

// User returns the live user with the given id.
func (s *Server) User(id string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.dir.lookup(id)
	if !ok {
		return User{}, false
	}
	if _, gone := s.dir.deleted[i]; gone {
		return User{}, false
	}
	return s.dir.at(i), true
}

// AddUser adds a user and returns it. An empty ID is assigned one.
func (s *Server) AddUser(u User) User {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.dir.size()
	if u.ID == "" {
		u.ID = userID(s.opts.Seed, i)
	}
	s.dir.added = append(s.dir.added, u)
	s.dir.record(i)
	return u
}

// UpdateUser changes a live user with fn; the id cannot change.
func (s *Server) UpdateUser(id string, fn func(*User)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.dir.lookup(id)
	if _, gone := s.dir.deleted[i]; !ok || gone {
		return fmt.Errorf("fakegraph: no user %s", id)
	}
	u := s.dir.at(i)
	fn(&u)
	u.ID = id
	s.dir.overrides[i] = &u
	s.dir.record(i)
	return nil
}

// DeleteUser deletes a user: soft (restorable, delta reason "changed") or
// permanent (delta reason "deleted"). A soft-deleted user may be deleted
// again permanently.
func (s *Server) DeleteUser(id string, permanent bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.dir.lookup(id)
	if !ok {
		return fmt.Errorf("fakegraph: no user %s", id)
	}
	if r, gone := s.dir.deleted[i]; gone && (r.permanent || !permanent) {
		return fmt.Errorf("fakegraph: user %s is already deleted", id)
	}
	s.dir.deleted[i] = removal{permanent: permanent}
	s.dir.record(i)
	return nil
}

// issueLocked mints an access token; the caller holds s.mu.
// issueLocked issues an access token shaped as Entra issues them, a JWT
// whose payload names the tenant, the app and its application permissions
// (roles); its signature is random (nothing here verifies it).
func (s *Server) issueLocked() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	exp := time.Now().Add(s.opts.TokenLifetime)
	roles := []string{"User.Read.All", "Domain.Read.All", "UserAuthenticationMethod.Read.All"}
	if !s.passwordWriteDenied {
		roles = append(roles, RolePasswordWrite)
	}
	payload, _ := json.Marshal(map[string]any{
		"aud": "https://graph.microsoft.com", "tid": s.opts.TenantID, "appid": s.opts.ClientID,
		"roles": roles, "exp": exp.Unix(), "uti": hex.EncodeToString(b[:8]),
	})
	enc := base64.RawURLEncoding
	tok := enc.EncodeToString([]byte(`{"typ":"JWT","alg":"RS256"}`)) + "." + enc.EncodeToString(payload) + "." + enc.EncodeToString(b)
	s.tokens[tok] = exp
	return tok
}

func (s *Server) count(route string) {
	s.mu.Lock()
	s.requests[route]++
	s.mu.Unlock()
}

// openIDConfiguration serves the tenant's OpenID Connect metadata, which MSAL
// reads before asking for a token.
func (s *Server) openIDConfiguration(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	if !s.knownTenant(tenant) {
		aadError(w, http.StatusBadRequest, "invalid_tenant", 90002, fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant))
		return
	}
	base := s.srv.URL + "/" + tenant
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                s.srv.URL + "/" + s.opts.TenantID + "/v2.0",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"device_authorization_endpoint":         base + "/oauth2/v2.0/devicecode",
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"tenant_region_scope":                   "EU",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
	})
}

func (s *Server) knownTenant(t string) bool {
	if strings.EqualFold(t, s.opts.TenantID) {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.dir.domains {
		if strings.EqualFold(d.ID, t) {
			return true
		}
	}
	return false
}

// token implements the client credentials grant with the identity
// platform's error responses.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	s.count("token")
	tenant := r.PathValue("tenant")
	if !s.knownTenant(tenant) {
		aadError(w, http.StatusBadRequest, "invalid_tenant", 90002, fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant))
		return
	}
	if err := r.ParseForm(); err != nil {
		aadError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		aadError(w, http.StatusBadRequest, "unsupported_grant_type", 70003, fmt.Sprintf("The app requested an unsupported grant type '%s'.", gt))
		return
	}
	clientID, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		clientID, secret = u, p
	}
	if !strings.EqualFold(clientID, s.opts.ClientID) {
		aadError(w, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", clientID, tenant))
		return
	}
	if secret != s.opts.ClientSecret {
		aadError(w, http.StatusUnauthorized, "invalid_client", 7000215, fmt.Sprintf("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", clientID))
		return
	}
	if !hasDefaultScope(r.PostForm.Get("scope")) {
		aadError(w, http.StatusBadRequest, "invalid_scope", 1002012, fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", r.PostForm.Get("scope")))
		return
	}
	s.mu.Lock()
	tok := s.issueLocked()
	s.mu.Unlock()
	secs := int(s.opts.TokenLifetime / time.Second)
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type":     "Bearer",
		"expires_in":     secs,
		"ext_expires_in": secs,
		"access_token":   tok,
	})
}

// hasDefaultScope reports whether the scope list asks for a resource's
// /.default scope (MSAL adds openid, profile and offline_access).
func hasDefaultScope(scope string) bool {
	for _, sc := range strings.Fields(scope) {
		if strings.HasSuffix(sc, "/.default") {
			return true
		}
	}
	return false
}

// aadError writes the identity platform's OAuth error response.
func aadError(w http.ResponseWriter, status int, code string, aadsts int, description string) {
	now := time.Now().UTC()
	writeJSON(w, status, map[string]any{
		"error": code,
		"error_description": fmt.Sprintf("AADSTS%d: %s Trace ID: 00000000-0000-0000-0000-000000000000 Correlation ID: 00000000-0000-0000-0000-000000000000 Timestamp: %s",
			aadsts, description, now.Format("2006-01-02 15:04:05Z")),
		"error_codes":    []int{aadsts},
		"timestamp":      now.Format("2006-01-02 15:04:05Z"),
		"trace_id":       "00000000-0000-0000-0000-000000000000",
		"correlation_id": "00000000-0000-0000-0000-000000000000",
		"error_uri":      "https://login.microsoftonline.com/error?code=" + strconv.Itoa(aadsts),
	})
}

// graph wraps a Graph handler: it counts the request, checks the bearer
// token and applies injected faults.
func (s *Server) graph(route string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests[route]++
		s.seen++
		f := s.matchFaultLocked(r.URL.Path)
		tok, hasBearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		exp, known := s.tokens[tok]
		s.mu.Unlock()

		switch {
		case !hasBearer || tok == "":
			w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize"`)
			graphError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token is empty.")
			return
		case !known:
			w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize"`)
			graphError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
			return
		case time.Now().After(exp):
			graphError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
			return
		}
		if f != nil {
			s.serveFault(w, r, h, f)
			return
		}
		h(w, r)
	}
}

// matchFaultLocked returns the fault that serves this request, if any.
func (s *Server) matchFaultLocked(path string) *Fault {
	for k, f := range s.faults {
		if f.Path != "" && !strings.HasPrefix(path, f.Path) {
			continue
		}
		if f.skipped < f.After {
			f.skipped++
			continue
		}
		f.served++
		times := f.Times
		if times == 0 {
			times = 1
		}
		if times > 0 && f.served >= times {
			s.faults = append(s.faults[:k:k], s.faults[k+1:]...)
		}
		fault := f.Fault
		return &fault
	}
	return nil
}

func (s *Server) serveFault(w http.ResponseWriter, r *http.Request, h http.HandlerFunc, f *Fault) {
	if f.RetryAfter > 0 {
		secs := int((f.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	if f.Truncate {
		rec := httptest.NewRecorder()
		h(rec, r)
		body := rec.Body.Bytes()
		body = body[:len(body)/2]
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		status := f.Status
		if status == 0 {
			status = rec.Code
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
		return
	}
	status := f.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	if f.HTML {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<!DOCTYPE html>\n<html><head><title>%d %s</title></head><body><h1>%s</h1><p>The gateway could not reach the service. Reference #18.2f1e3b17</p></body></html>\n",
			status, http.StatusText(status), http.StatusText(status))
		return
	}
	code, msg := f.Code, f.Message
	if code == "" || msg == "" {
		dc, dm := defaultError(status)
		code, msg = cmpOr(code, dc), cmpOr(msg, dm)
	}
	graphError(w, status, code, msg)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// defaultError is what Graph sends for a status when a test gives no code.
func defaultError(status int) (code, message string) {
	switch status {
	case http.StatusUnauthorized:
		return "InvalidAuthenticationToken", "Access token validation failure."
	case http.StatusForbidden:
		return "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
	case http.StatusNotFound:
		return "Request_ResourceNotFound", "Resource does not exist or one of its queried reference-property objects are not present."
	case http.StatusGone:
		return "syncStateNotFound", "The sync state generation is not found."
	case http.StatusTooManyRequests:
		return "TooManyRequests", "Too many requests. Please retry after some time."
	case http.StatusServiceUnavailable:
		return "serviceNotAvailable", "The service is temporarily unavailable. Please retry after some time."
	default:
		return "generalException", "An unexpected error occurred."
	}
}

// graphError writes Graph's error envelope.
func graphError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{
		"error": map[string]any{
			"code":    code,
			"message": message,
			"innerError": map[string]string{
				"date":              time.Now().UTC().Format("2006-01-02T15:04:05"),
				"request-id":        "00000000-0000-0000-0000-000000000000",
				"client-request-id": "00000000-0000-0000-0000-000000000000",
			},
		},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeBody(w, status, b)
}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// errBadQuery is a query Graph rejects with 400.
type errBadQuery struct{ code, message string }

func (e *errBadQuery) Error() string { return e.message }

func badQuery(err error, w http.ResponseWriter) bool {
	var bq *errBadQuery
	if errors.As(err, &bq) {
		graphError(w, http.StatusBadRequest, bq.code, bq.message)
		return true
	}
	return false
}
