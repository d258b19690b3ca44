package service

import (
	"fmt"
	"net/http"
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
