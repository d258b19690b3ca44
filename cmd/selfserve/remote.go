package main

// The CLI's remote commands work through the admin HTTP API (api_url /
// SELFSERVE_API_URL, api_token / SELFSERVE_API_TOKEN), as a technician's
// login: `import CONNECTION` without --inline and `settings`.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// apiClient calls the admin API.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

// apiError is an error reply of the API.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field"`
}

func (e *apiError) Error() string {
	msg := fmt.Sprintf("the API answered %d %s: %s", e.Status, e.Code, e.Message)
	if e.Field != "" {
		msg += fmt.Sprintf(" (field %s)", e.Field)
	}
	return msg
}

// api returns a client of the configured admin API.
func (c *cli) api() (*apiClient, error) {
	cfg, err := c.config()
	if err != nil {
		return nil, err
	}
	token := cfg.APIToken.Reveal()
	if token == "" {
		return nil, errors.New("no API token: set SELFSERVE_API_TOKEN (or api_token in the config file) to a token from `selfserve token create`")
	}
	return &apiClient{base: cfg.AdminURL(), token: token, http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// call sends a JSON request and decodes the JSON reply into out (if not
// nil). An error reply becomes an *apiError.
func (ac *apiClient) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, ac.base+path, rd)
	if err != nil {
		return fmt.Errorf("API URL %s: %w", ac.base, err)
	}
	req.Header.Set("Authorization", "Bearer "+ac.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := ac.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the admin API at %s (is `selfserve serve` running? set SELFSERVE_API_URL): %w", ac.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var env struct {
			Error *apiError `json:"error"`
		}
		if json.Unmarshal(data, &env) != nil || env.Error == nil {
			return fmt.Errorf("%s %s: the API answered %s", method, path, resp.Status)
		}
		env.Error.Status = resp.StatusCode
		return env.Error
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: the reply is not the JSON expected: %w", method, path, err)
	}
	return nil
}

// remoteTenant is what the commands read of GET /v1/tenant.
type remoteTenant struct {
	Name               string `json:"name"`
	Subscription       string `json:"subscription"`
	SelfServeAvailable bool   `json:"self_serve_available"`
	SelfServe          bool   `json:"self_serve"`
}

func runSettings(ctx context.Context, c *cli, args []string) error {
	fs := flags(c, "settings", "[self-serve on|off]")
	if err := parse(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	ac, err := c.api()
	if err != nil {
		return err
	}
	var t remoteTenant
	switch {
	case len(rest) == 0:
		if err := ac.call(ctx, "GET", "/v1/tenant", nil, &t); err != nil {
			return err
		}
	case len(rest) == 2 && rest[0] == "self-serve" && (rest[1] == "on" || rest[1] == "off"):
		if err := ac.call(ctx, "PATCH", "/v1/tenant", map[string]bool{"self_serve": rest[1] == "on"}, &t); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: settings [self-serve on|off]", errUsage)
	}
	state := "ON (technicians configure each end user)"
	if !t.SelfServe {
		state = "OFF (no notifications and no self-serve for any end user; switches locked)"
	}
	fmt.Fprintf(c.stdout, "tenant %s: self-serve override %s\n", t.Name, state)
	if !t.SelfServeAvailable {
		fmt.Fprintf(c.stdout, "note: the %q subscription does not include self-serve\n", t.Subscription)
	}
	return nil
}

// remoteConnection is what import reads of a connection.
type remoteConnection struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Kind string `json:"kind"`
}

// remoteRun is what import reads of a run.
type remoteRun struct {
	ID              int64  `json:"id"`
	Status          string `json:"status"`
	Mode            string `json:"mode"`
	Pages           int    `json:"pages"`
	Processed       int    `json:"processed"`
	Created         int    `json:"created"`
	Updated         int    `json:"updated"`
	Unchanged       int    `json:"unchanged"`
	Removed         int    `json:"removed"`
	Invalid         int    `json:"invalid"`
	PendingRemovals int    `json:"pending_removals"`
	Error           string `json:"error"`
	DurationMS      int64  `json:"duration_ms"`
	Expected        int    `json:"expected"`
	Finished        bool   `json:"finished"`
	Problems        []struct {
		Ref    string `json:"Ref"`
		Reason string `json:"Reason"`
	} `json:"problems"`
}

// pollInterval is how often import asks for the run's progress.
var pollInterval = 500 * time.Millisecond

// remoteImport starts a run of the named connection through the API and
// shows its progress until it ends. The error is non-nil unless the run
// succeeded.
func (c *cli) remoteImport(ctx context.Context, name, tenantName string, full, confirm bool) error {
	ac, err := c.api()
	if err != nil {
		return err
	}
	if tenantName != "" {
		var t remoteTenant
		if err := ac.call(ctx, "GET", "/v1/tenant", nil, &t); err != nil {
			return err
		}
		if t.Name != tenantName {
			return fmt.Errorf("%w: --tenant %q, but the API token belongs to tenant %q", errUsage, tenantName, t.Name)
		}
	}
	var list struct {
		Connections []remoteConnection `json:"connections"`
	}
	if err := ac.call(ctx, "GET", "/v1/connections", nil, &list); err != nil {
		return err
	}
	var conn *remoteConnection
	var names []string
	for i, co := range list.Connections {
		names = append(names, co.Name)
		if co.Name == name {
			conn = &list.Connections[i]
		}
	}
	if conn == nil {
		return fmt.Errorf("no connection %q in this tenant (connections: %s)", name, strings.Join(names, ", "))
	}
	var run remoteRun
	switch conn.Kind {
	case "itglue", "hudu", "connectwise":
		err = ac.call(ctx, "POST", "/v1/customers/import", map[string]any{"connection_id": conn.ID}, &run)
	default:
		mode := "incremental"
		if full {
			mode = "full"
		}
		err = ac.call(ctx, "POST", fmt.Sprintf("/v1/connections/%d/sync", conn.ID), map[string]any{"mode": mode, "confirm_removals": confirm}, &run)
	}
	if err != nil {
		return err
	}
	bar := newProgressBar(c.stdout)
	fmt.Fprintf(c.stdout, "run %d of %s queued\n", run.ID, conn.Name)
	for !run.Finished {
		bar.draw(run)
		select {
		case <-ctx.Done():
			bar.done()
			fmt.Fprintf(c.stdout, "stopped watching; run %d goes on (GET /v1/runs/%d)\n", run.ID, run.ID)
			return ctx.Err()
		case <-time.After(pollInterval):
		}
		if err := ac.call(ctx, "GET", fmt.Sprintf("/v1/runs/%d", run.ID), nil, &run); err != nil {
			if ctx.Err() != nil {
				continue
			}
			return err
		}
	}
	bar.draw(run)
	bar.done()
	fmt.Fprintf(c.stdout, "run %d of %s: %s (%s, %d pages, %d ms)\n", run.ID, conn.Name, run.Status, run.Mode, run.Pages, run.DurationMS)
	fmt.Fprintf(c.stdout, "  processed %d: created %d, updated %d, unchanged %d, removed %d, invalid %d\n",
		run.Processed, run.Created, run.Updated, run.Unchanged, run.Removed, run.Invalid)
	for _, p := range run.Problems {
		fmt.Fprintf(c.stdout, "  problem: %s: %s\n", p.Ref, p.Reason)
	}
	switch run.Status {
	case "succeeded":
		if run.Error != "" { // a note, such as why nobody was removed
			fmt.Fprintf(c.stdout, "  %s\n", run.Error)
		}
		return nil
	case "needs_confirmation":
		return fmt.Errorf("%s (rerun with --confirm-removals)", run.Error)
	default:
		return fmt.Errorf("run %d %s: %s", run.ID, run.Status, run.Error)
	}
}

// progressBar draws a run's progress: redrawn in place on a terminal, one
// line per change otherwise.
type progressBar struct {
	w    io.Writer
	tty  bool
	last string
	tick int
}

func newProgressBar(w io.Writer) *progressBar {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progressBar{w: w, tty: tty}
}

const barWidth = 30

// line renders the bar and counts of run.
func (p *progressBar) line(run remoteRun) string {
	var bar string
	switch {
	case run.Finished:
		bar = strings.Repeat("=", barWidth)
	case run.Expected > 0:
		frac := min(float64(run.Processed)/float64(run.Expected), 0.99)
		n := int(frac * barWidth)
		bar = strings.Repeat("=", n) + ">" + strings.Repeat(" ", barWidth-n-1)
	default: // size unknown: a moving marker
		pos := p.tick % (barWidth - 2)
		bar = strings.Repeat(" ", pos) + "<=>" + strings.Repeat(" ", barWidth-pos-3)
	}
	pct := ""
	if run.Expected > 0 && !run.Finished {
		pct = fmt.Sprintf(" ~%d%%", min(run.Processed*100/run.Expected, 99))
	}
	return fmt.Sprintf("[%s]%s %s: page %d, processed %d (created %d, updated %d, unchanged %d, removed %d, invalid %d)",
		bar, pct, run.Status, run.Pages, run.Processed, run.Created, run.Updated, run.Unchanged, run.Removed, run.Invalid)
}

func (p *progressBar) draw(run remoteRun) {
	p.tick++
	l := p.line(run)
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\x1b[K", l)
		return
	}
	key := fmt.Sprint(run.Status, run.Pages, run.Processed)
	if key != p.last {
		fmt.Fprintln(p.w, l)
		p.last = key
	}
}

func (p *progressBar) done() {
	if p.tty {
		fmt.Fprintln(p.w)
	}
}
