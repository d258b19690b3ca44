package selfserve

import (
	"net/http"
	"strings"
)

// Handler is the public listener's handler: the JSON API, its OpenAPI
// document and the web pages. Nothing else answers (404): the admin API,
// the ops endpoints and the console live on other listeners. Every answer
// says no-store, nosniff and no-referrer; cross-origin form posts are
// refused (http.CrossOriginProtection) besides the forms' own tokens.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range apiRoutes() {
		mux.HandleFunc(rt.method+" "+rt.path, func(w http.ResponseWriter, r *http.Request) {
			if err := rt.handle(s, w, r); err != nil {
				s.apiError(w, r, err)
			}
		})
	}
	s.pageRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/self-serve/") {
			s.apiError(w, r, &Error{Status: http.StatusNotFound, Code: "not_found", Message: "no such endpoint; see /self-serve/openapi.json"})
			return
		}
		http.NotFound(w, r)
	})
	cop := http.NewCrossOriginProtection()
	return cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		mux.ServeHTTP(w, r)
	}))
}
