// Package faketwilio is a fake of Twilio's Messages API on a loopback
// httptest server, following its wire format: POST
// /2010-04-01/Accounts/{AccountSid}/Messages.json with HTTP basic auth
// (AccountSid:AuthToken) and a form body (To, From or MessagingServiceSid,
// Body), answered 201 with the message resource, or an error envelope
// {"code","message","more_info","status"}. Tests make it throttle (429 with
// Retry-After) or fail (5xx, 4xx) per request.
package faketwilio

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Message is a message the fake accepted.
type Message struct {
	SID            string
	To, From, Body string
	// IdempotencyKey is the request's Idempotency-Key header, if any.
	IdempotencyKey string
	At             time.Time
}

// Fault is an answer a test imposes on a request instead of accepting it.
type Fault struct {
	// Status is the HTTP status (429, 500, 400…).
	Status int
	// RetryAfter is sent as Retry-After (seconds) when set.
	RetryAfter string
	// Code and Message fill the error envelope.
	Code    int
	Message string
}

// Server is a running fake.
type Server struct {
	*httptest.Server
	AccountSID string
	AuthToken  string

	mu       sync.Mutex
	msgs     []Message
	requests int
	// fault, when set, may answer a request with a Fault instead.
	fault func(to string, n int) *Fault
	seq   int
}

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// New starts a fake with the given credentials.
func New(accountSID, authToken string) *Server {
	s := &Server{AccountSID: accountSID, AuthToken: authToken}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2010-04-01/Accounts/{sid}/Messages.json", s.create)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
	})
	s.Server = httptest.NewServer(mux)
	return s
}

// SetFault installs fn, called for every request with its To number and the
// request's sequence number (1-based); a non-nil Fault is answered instead
// of accepting the message. nil removes it.
func (s *Server) SetFault(fn func(to string, n int) *Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = fn
}

// Messages returns the messages accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Requests is how many send requests arrived (accepted or not).
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(s.AccountSID)) != 1 || subtle.ConstantTimeCompare([]byte(pass), []byte(s.AuthToken)) != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
		writeError(w, http.StatusUnauthorized, 20003, "Authentication Error - invalid username")
		return
	}
	if r.PathValue("sid") != s.AccountSID {
		writeError(w, http.StatusForbidden, 20003, "Permission Denied")
		return
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, 21600, "Malformed request body")
		return
	}
	to, from, body, svc := r.PostForm.Get("To"), r.PostForm.Get("From"), r.PostForm.Get("Body"), r.PostForm.Get("MessagingServiceSid")
	s.mu.Lock()
	s.requests++
	n := s.requests
	fault := s.fault
	s.mu.Unlock()
	if fault != nil {
		if f := fault(to, n); f != nil {
			if f.RetryAfter != "" {
				w.Header().Set("Retry-After", f.RetryAfter)
			}
			msg := f.Message
			if msg == "" {
				msg = http.StatusText(f.Status)
			}
			writeError(w, f.Status, f.Code, msg)
			return
		}
	}
	switch {
	case to == "":
		writeError(w, http.StatusBadRequest, 21604, "A 'To' phone number is required.")
		return
	case !e164.MatchString(to):
		writeError(w, http.StatusBadRequest, 21211, fmt.Sprintf("Invalid 'To' Phone Number: %s", to))
		return
	case from == "" && svc == "":
		writeError(w, http.StatusBadRequest, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message")
		return
	case strings.TrimSpace(body) == "":
		writeError(w, http.StatusBadRequest, 21602, "Message body is required.")
		return
	case len([]rune(body)) > 1600:
		writeError(w, http.StatusBadRequest, 21617, "The concatenated message body exceeds the 1600 character limit.")
		return
	}
	s.mu.Lock()
	s.seq++
	sid := fmt.Sprintf("SM%032x", s.seq)
	now := time.Now().UTC()
	s.msgs = append(s.msgs, Message{SID: sid, To: to, From: from, Body: body, IdempotencyKey: r.Header.Get("Idempotency-Key"), At: now})
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]any{
		"sid": sid, "account_sid": s.AccountSID, "to": to, "from": from, "body": body,
		"status": "queued", "direction": "outbound-api", "num_segments": "1", "api_version": "2010-04-01",
		"date_created": now.Format(time.RFC1123Z), "uri": "/2010-04-01/Accounts/" + s.AccountSID + "/Messages/" + sid + ".json",
	})
}

func writeError(w http.ResponseWriter, status, code int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"code": code, "message": message, "more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code), "status": status,
	})
}
