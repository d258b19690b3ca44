package selfserve

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"selfserve/internal/store"
)

// The JSON API, under /self-serve/v1/{tenant}/ (the tenant's name as in
// the apply file), described by /self-serve/openapi.json. Errors are
// {"error":{"code","message","field"}}.

// OpenAPI is the API's OpenAPI 3 description (openapi.json here), served at
// /self-serve/openapi.json. A test checks it lists exactly the routes.
//
//go:embed openapi.json
var OpenAPI []byte

// maxBody bounds a request body: a login, a code, a grant and a password
// are all small.
const maxBody = 16 << 10

// apiRoute is one endpoint of the JSON API.
type apiRoute struct {
	method, path string
	handle       func(s *Service, w http.ResponseWriter, r *http.Request) error
}

// APIPrefix is where the JSON API lives.
const APIPrefix = "/self-serve/v1/{tenant}"

// Routes lists the JSON API's endpoints as "METHOD path" (the OpenAPI
// document lists exactly these).
func Routes() []string {
	var out []string
	for _, r := range apiRoutes() {
		out = append(out, r.method+" "+r.path)
	}
	return out
}

func apiRoutes() []apiRoute {
	return []apiRoute{
		{"GET", "/self-serve/openapi.json", (*Service).openAPI},
		{"GET", APIPrefix + "/policy", (*Service).apiPolicy},
		{"POST", APIPrefix + "/challenges", (*Service).apiChallenge},
		{"POST", APIPrefix + "/challenges/{id}/verify", (*Service).apiVerify},
		{"POST", APIPrefix + "/password", (*Service).apiPassword},
		{"POST", APIPrefix + "/unlock", (*Service).apiUnlock},
		{"POST", APIPrefix + "/enrolment", (*Service).apiEnrolment},
	}
}

func (s *Service) openAPI(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, err := w.Write(OpenAPI)
	return err
}

func (s *Service) apiPolicy(w http.ResponseWriter, r *http.Request) error {
	var p Policy
	var err error
	if grant, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		p, err = s.GrantPolicy(r.Context(), r.PathValue("tenant"), grant)
	} else {
		p, err = s.TenantPolicy(r.Context(), r.PathValue("tenant"))
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

type challengeRequest struct {
	Login   string                 `json:"login"`
	Purpose store.ChallengePurpose `json:"purpose"`
}

func (s *Service) apiChallenge(w http.ResponseWriter, r *http.Request) error {
	var req challengeRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	out, err := s.StartChallenge(r.Context(), r.PathValue("tenant"), req.Login, req.Purpose, s.ClientIP(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, out)
	return nil
}

type verifyRequest struct {
	Channel string `json:"channel"`
	Code    string `json:"code"`
}

func (s *Service) apiVerify(w http.ResponseWriter, r *http.Request) error {
	var req verifyRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	out, err := s.Verify(r.Context(), r.PathValue("tenant"), r.PathValue("id"), req.Channel, req.Code, s.ClientIP(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

type passwordRequest struct {
	Grant       string `json:"grant"`
	NewPassword string `json:"new_password"`
}

func (s *Service) apiPassword(w http.ResponseWriter, r *http.Request) error {
	var req passwordRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	out, err := s.SetPassword(r.Context(), r.PathValue("tenant"), req.Grant, req.NewPassword, s.ClientIP(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

type unlockRequest struct {
	Grant string `json:"grant"`
}

func (s *Service) apiUnlock(w http.ResponseWriter, r *http.Request) error {
	var req unlockRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	out, err := s.Unlock(r.Context(), r.PathValue("tenant"), req.Grant, s.ClientIP(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

type enrolmentRequest struct {
	Token  string `json:"token"`
	Mobile string `json:"mobile"`
}

func (s *Service) apiEnrolment(w http.ResponseWriter, r *http.Request) error {
	var req enrolmentRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	out, err := s.StartEnrolment(r.Context(), r.PathValue("tenant"), req.Token, req.Mobile, s.ClientIP(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, out)
	return nil
}

// ClientIP is the request's client address as the trusted proxies tell it.
func (s *Service) ClientIP(r *http.Request) string { return clientIP(r, s.opt.TrustedProxies) }

// decode reads one JSON object of at most maxBody bytes with no unknown
// fields into v.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, maxBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var tooBig *http.MaxBytesError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooBig):
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Message: fmt.Sprintf("the request body is larger than %d bytes", maxBody)}
	case errors.Is(err, io.EOF):
		return &Error{Status: 400, Code: "invalid_json", Message: "the request body is empty: send a JSON object"}
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Status: 400, Code: "invalid_json", Message: "the request body is not valid JSON"}
	case errors.As(err, &typ):
		return fieldError(typ.Field, "%s must be a %s", typ.Field, typ.Type.Kind())
	case err != nil && strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return fieldError(f, "unknown field %q", f)
	case err != nil:
		return &Error{Status: 400, Code: "invalid_json", Message: "the request body is not a JSON object of the expected shape"}
	}
	if dec.More() {
		return &Error{Status: 400, Code: "invalid_json", Message: "the request body holds more than one JSON value"}
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code         string `json:"code"`
	Message      string `json:"message"`
	Field        string `json:"field"`
	Rule         string `json:"rule,omitempty"`
	AttemptsLeft *int   `json:"attempts_left,omitempty"`
}

// apiError answers err as the API's error body; anything that is not an
// *Error is a 500 whose detail goes to the log only.
func (s *Service) apiError(w http.ResponseWriter, r *http.Request, err error) {
	e := s.asError(r, err)
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(e.RetryAfter.Seconds())+1))
	}
	writeJSON(w, e.Status, errorBody{errorDetail{Code: e.Code, Message: e.Message, Field: e.Field, Rule: e.Rule, AttemptsLeft: e.AttemptsLeft}})
}

func (s *Service) asError(r *http.Request, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	s.log.Error("self-serve request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	return &Error{Status: 500, Code: "internal", Message: "something went wrong on our side; try again in a minute"}
}
