package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"selfserve/internal/agentproto"
)

// client talks to the server's /agent/v1 endpoints, signing every request
// with the agent's key and correcting its clock from the server's.
type client struct {
	base    *url.URL
	http    *http.Client
	state   *State
	now     func() time.Time
	offsetM atomic.Int64 // server clock minus ours, in milliseconds
}

// ServerError is an answer other than 2xx from the server.
type ServerError struct {
	Status  int
	Code    string
	Message string
}

// Error implements error.
func (e *ServerError) Error() string {
	return fmt.Sprintf("server answered %d %s: %s", e.Status, e.Code, e.Message)
}

// ErrRevoked: the server no longer accepts this agent.
var ErrRevoked = errors.New("the server refused this agent's key (revoked, or enrolled again elsewhere): enrol it again with a new install code")

// checkServerURL accepts https URLs, and plain http only to a loopback
// address (a server on the same machine, or tests).
func checkServerURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("server %q is not a URL like https://selfserve.example.com", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		ip := net.ParseIP(u.Hostname())
		if u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("server %q: the agent talks HTTPS only (plain http is allowed to a loopback address alone)", raw)
		}
	default:
		return nil, fmt.Errorf("server %q: want an https:// URL", raw)
	}
	return u, nil
}

func newHTTPClient(caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificate in it", caFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	// The long-poll is held LongPoll by the server; give it room.
	return &http.Client{Transport: tr, Timeout: agentproto.LongPoll + 30*time.Second}, nil
}

func (c *client) serverNow() time.Time {
	return c.now().Add(time.Duration(c.offsetM.Load()) * time.Millisecond)
}

// learnClock takes the server's clock from an answer.
func (c *client) learnClock(resp *http.Response) {
	ms, err := strconv.ParseInt(resp.Header.Get(agentproto.HeaderServerTime), 10, 64)
	if err != nil {
		return
	}
	c.offsetM.Store(ms - c.now().UnixMilli())
}

// do sends a signed POST of body (JSON-encoded) to path and decodes a 200
// answer into out (nil: ignore). It returns (false, nil) for 204. A
// refusal because of clock skew is retried once with the corrected clock.
func (c *client) do(ctx context.Context, path string, body, out any) (bool, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return false, err
	}
	for attempt := 0; ; attempt++ {
		ok, err := c.send(ctx, path, raw, out)
		var se *ServerError
		if attempt == 0 && errors.As(err, &se) && se.Code == "clock_skew" {
			continue
		}
		return ok, err
	}
}

func (c *client) send(ctx context.Context, path string, raw []byte, out any) (bool, error) {
	u := c.base.JoinPath(path)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(raw))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "selfserve-agent/"+Version)
	if c.state.AgentID != 0 {
		req.Header.Set("Authorization", agentproto.Sign(c.state.signKey, c.state.AgentID, http.MethodPost, req.URL.RequestURI(), raw, c.serverNow()))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	c.learnClock(resp)
	switch {
	case resp.StatusCode == http.StatusNoContent:
		return false, nil
	case resp.StatusCode == http.StatusOK:
		if out == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			return true, nil
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, agentproto.MaxBody)).Decode(out); err != nil {
			return false, fmt.Errorf("%s: the server's answer is not the expected JSON: %w", path, err)
		}
		return true, nil
	}
	var e agentproto.Error
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e)
	se := &ServerError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	if se.Message == "" {
		se.Message = http.StatusText(resp.StatusCode)
	}
	if resp.StatusCode == http.StatusUnauthorized && (se.Code == "revoked" || se.Code == "unauthenticated") {
		return false, fmt.Errorf("%w (%s)", ErrRevoked, se.Message)
	}
	return false, se
}

// temporary reports whether a request may succeed if tried again: network
// trouble and server errors, not refusals.
func temporary(err error) bool {
	var se *ServerError
	if errors.As(err, &se) {
		return se.Status >= 500 || se.Status == http.StatusTooManyRequests
	}
	return err != nil && !errors.Is(err, ErrRevoked) && !errors.Is(err, context.Canceled)
}
