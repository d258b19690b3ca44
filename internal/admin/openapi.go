package admin

import (
	_ "embed"
	"net/http"
)

// OpenAPI is the API's OpenAPI 3 description, kept in the repository as
// internal/admin/openapi.json and served at /openapi.json. A test checks
// that it lists exactly the registered routes.
//
//go:embed openapi.json
var OpenAPI []byte

func (a *api) openAPI(w http.ResponseWriter, r *http.Request, _ *principal) error {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "public, max-age=300")
	_, err := w.Write(OpenAPI)
	return err
}
