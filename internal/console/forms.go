package console

import (
	"errors"
	"net/http"
	"slices"

	"selfserve/internal/service"
)

// form is a form shown again after a refused submission: what was typed
// and the error, shown next to its field.
type form struct {
	Values map[string]string
	// Field is the field at fault; Error its message.
	Field, Error string
}

// Value is what was typed in field name.
func (f form) Value(name string) string { return f.Values[name] }

// Invalid reports whether the error is about field name.
func (f form) Invalid(name string) bool { return f.Error != "" && f.Field == name }

// typed returns the form's values of fields, as typed.
func typed(r *http.Request, fields ...string) map[string]string {
	v := make(map[string]string, len(fields))
	for _, k := range fields {
		v[k] = r.PostForm.Get(k)
	}
	return v
}

// fieldError reports err as an error next to one of fields: a 400 or 409
// of the service naming one of them, or without a field when fallback
// names where to show it. ok is false for other errors (an error page).
func fieldError(err error, fallback string, fields ...string) (e *service.Error, field string, ok bool) {
	if err == nil {
		return nil, "", false
	}
	if !errors.As(err, &e) || (e.Status != http.StatusBadRequest && e.Status != http.StatusConflict && e.Status != http.StatusBadGateway) {
		if ce, classified := service.Classify(err); classified && ce.Status == http.StatusConflict && fallback != "" {
			return ce, fallback, true
		}
		return nil, "", false
	}
	switch {
	case slices.Contains(fields, e.Field):
		return e, e.Field, true
	case fallback != "":
		return e, fallback, true
	}
	return nil, "", false
}
