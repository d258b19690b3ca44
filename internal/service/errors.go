package service

import (
	"errors"
	"fmt"
	"net/http"

	"selfserve/internal/store"
)

// Error is a failure reported to the caller: its HTTP status, a stable
// code, a message for people and, when one is at fault, the field. The API
// writes it as {"error": {…}}; the console shows the message next to the
// field.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// Field names the request field (JSON key, form field, path or query
	// parameter) at fault, when there is one.
	Field string `json:"field,omitempty"`
	// Items lists per-item problems of a bulk request.
	Items []ItemError `json:"items,omitempty"`
}

// ItemError is the problem of one item of a bulk request.
type ItemError struct {
	ID      int64  `json:"id"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s", e.Field, e.Message)
	}
	return e.Message
}

// BadField is a 400 naming the field.
func BadField(field, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_field", Field: field, Message: fmt.Sprintf(format, args...)}
}

// Conflict is a 409.
func Conflict(code, format string, args ...any) *Error {
	return &Error{Status: http.StatusConflict, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Unavailable is a 503: the server is not configured for the request.
func Unavailable(format string, args ...any) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: fmt.Sprintf(format, args...)}
}

// Classify maps err to the Error the caller sees: an *Error as it is, an
// oversized body 413, the store's sentinels 404, 409 or 401 (a
// *store.LastSuperError 409 last_super), an unreachable
// database 503 (the cause is not shown). ok is false
// for errors that are not the caller's doing: log them and answer 500.
func Classify(err error) (e *Error, ok bool) {
	var maxErr *http.MaxBytesError
	var lastSuper *store.LastSuperError
	switch {
	case errors.As(err, &e):
		return e, true
	case errors.As(err, &maxErr):
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large", Message: fmt.Sprintf("the request body is larger than %d bytes", maxErr.Limit)}, true
	case errors.Is(err, store.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Code: "not_found", Message: err.Error()}, true
	case errors.Is(err, store.ErrLinkUsed):
		return &Error{Status: http.StatusConflict, Code: "link_used", Message: "this link was used already; ask your IT provider for a new welcome email", Field: "token"}, true
	case errors.Is(err, store.ErrRunActive):
		return &Error{Status: http.StatusConflict, Code: "run_active", Message: err.Error()}, true
	case errors.As(err, &lastSuper):
		return &Error{Status: http.StatusConflict, Code: "last_super", Message: lastSuper.Error()}, true
	case errors.Is(err, store.ErrConflict):
		return &Error{Status: http.StatusConflict, Code: "conflict", Message: err.Error()}, true
	case errors.Is(err, store.ErrTokenInvalid):
		return &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: err.Error()}, true
	case store.IsUnavailable(err):
		return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the database cannot be reached; try again shortly"}, true
	}
	return nil, false
}
