package console

import (
	"net/http"
)

// mayOpenOps reports whether the signed-in session may open the ops pages:
// the ops dashboard shows every tenant's queues, so only super logins of
// the operator's own tenant (Options.OpsTenant) may.
func (c *Console) mayOpenOps(s *session) bool {
	return s.Full() && s.actor.MayOpenOps(c.opts.OpsTenant)
}

// Monitoring guards the ops dashboard: a request carrying the console
// session of a login that may open it (mayOpenOps) is served by dashboard,
// behind the console's cross-origin protection and security headers; any
// other request (no session, another login, an ended session) goes to
// tokenGuarded, the dashboard behind the ops token, so the token keeps
// working and nothing else is opened.
func (c *Console) Monitoring(dashboard, tokenGuarded http.Handler) http.Handler {
	bySession := http.NewCrossOriginProtection().Handler(dashboard)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s, err := c.loadSession(r); err == nil && c.mayOpenOps(s) {
			h := w.Header()
			h.Set("X-Frame-Options", "DENY")
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Referrer-Policy", "same-origin")
			h.Set("Cache-Control", "no-store")
			bySession.ServeHTTP(w, r)
			return
		}
		tokenGuarded.ServeHTTP(w, r)
	})
}
