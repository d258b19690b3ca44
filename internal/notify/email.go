package notify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"

	"selfserve/internal/redact"
)

// TLSMode is how the SMTP connection is protected (the configuration's
// smtp.tls is one: package config holds this type).
type TLSMode string

// The TLS modes.
const (
	// TLSStartTLS upgrades a plain connection with STARTTLS and refuses a
	// server that cannot.
	TLSStartTLS TLSMode = "starttls"
	// TLSImplicit speaks TLS from the first byte (SMTPS, port 465).
	TLSImplicit TLSMode = "tls"
	// TLSNone sends in plain text.
	TLSNone TLSMode = "none"
)

// DefaultPort is the usual port of the mode: 465 for tls, 587 otherwise.
func (m TLSMode) DefaultPort() int {
	if m == TLSImplicit {
		return 465
	}
	return 587
}

// EmailConfig configures the SMTP channel.
type EmailConfig struct {
	// Host and Port name the server (Port 0: 587, or 465 for TLSImplicit).
	Host string
	Port int
	// TLS is TLSStartTLS (default: upgrade and refuse servers that
	// cannot), TLSImplicit or TLSNone.
	TLS TLSMode
	// RootCAs verifies the server's certificate (nil: the system roots).
	// Certificates are always verified against Host.
	RootCAs *x509.CertPool
	// Username and Password authenticate (empty Username: no AUTH).
	Username string
	Password redact.Secret
	// From is the sender, "Name <addr@host>" or a bare address.
	From string
	// Timeout bounds dialling and each SMTP command (default 30s).
	Timeout time.Duration
	// MaxConns caps the connections open to the server at once (default
	// 10; many relays limit connections per client): a send waits for a
	// free one. Connections are kept open between messages and reused.
	MaxConns int
	// IdleTimeout closes connections unused for that long (default 30s).
	IdleTimeout time.Duration
	// HELO is the name we greet with (default "localhost").
	HELO string
}

// Email sends notices over SMTP, keeping a few connections open between
// messages. It is safe for concurrent use.
type Email struct {
	client *gomail.Client
	from   *mail.Address
	domain string
	idle   time.Duration

	slots  chan struct{} // one per connection that may be open
	mu     sync.Mutex
	pool   []pooled
	closed bool
}

type pooled struct {
	c    *smtp.Client
	used time.Time
}

// NewEmail checks cfg and returns the channel. It does not connect.
func NewEmail(cfg EmailConfig) (*Email, error) {
	var problems []string
	if cfg.Host == "" {
		problems = append(problems, "host is required")
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		problems = append(problems, fmt.Sprintf("from %q is not an email address: %v", cfg.From, err))
	}
	if cfg.Username == "" && cfg.Password != "" {
		problems = append(problems, "password is set but username is not")
	}
	mode := cfg.TLS
	if mode == "" {
		mode = TLSStartTLS
	}
	if mode != TLSStartTLS && mode != TLSImplicit && mode != TLSNone {
		problems = append(problems, fmt.Sprintf("tls %q: want starttls, tls or none", cfg.TLS))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("smtp: %w: %s", ErrMisconfigured, strings.Join(problems, "; "))
	}
	port := cfg.Port
	if port == 0 {
		port = mode.DefaultPort()
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	helo := cfg.HELO
	if helo == "" {
		helo = "localhost"
	}
	opts := []gomail.Option{
		gomail.WithPort(port),
		gomail.WithTimeout(timeout),
		gomail.WithHELO(helo),
		gomail.WithTLSConfig(&tls.Config{ServerName: cfg.Host, RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}),
		// A pooled connection is neither probed with NOOP before each
		// message nor reset after it (a completed DATA ends the mail
		// transaction): two round trips fewer per message.
		gomail.WithoutNoop(),
		gomail.WithoutRset(),
	}
	switch mode {
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover), gomail.WithUsername(cfg.Username), gomail.WithPassword(cfg.Password.Reveal()))
	}
	client, err := gomail.NewClient(cfg.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("smtp: %w: %v", ErrMisconfigured, err)
	}
	maxConns := cfg.MaxConns
	if maxConns <= 0 {
		maxConns = 10
	}
	idle := cfg.IdleTimeout
	if idle <= 0 {
		idle = 30 * time.Second
	}
	_, domain, _ := strings.Cut(from.Address, "@")
	return &Email{client: client, from: from, domain: domain, idle: idle, slots: make(chan struct{}, maxConns)}, nil
}

// MessageID is the Message-ID header value of the message with id: the same
// on every attempt, so that duplicates can be recognised.
func (e *Email) MessageID(id string) string {
	return fmt.Sprintf("<%s@%s>", id, e.domain)
}

// Send delivers m over one of the pooled connections (or a new one, up to
// MaxConns). A pooled connection found dead before the server took
// anything is replaced once.
func (e *Email) Send(ctx context.Context, m Message) error {
	msg := gomail.NewMsg()
	msg.FromMailAddress(e.from)
	if err := msg.To(m.To); err != nil {
		return fmt.Errorf("smtp: recipient %q: %w: %v", m.To, ErrRejected, err)
	}
	msg.Subject(m.Subject)
	msg.SetMessageIDWithValue(strings.Trim(e.MessageID(m.ID), "<>"))
	msg.SetDate()
	msg.SetUserAgent("selfserve")
	msg.SetBodyString(gomail.TypeTextPlain, m.Body)

	select {
	case e.slots <- struct{}{}:
		defer func() { <-e.slots }()
	case <-ctx.Done():
		return fmt.Errorf("smtp: waiting for a connection: %w", ctx.Err())
	}
	for attempt := 0; ; attempt++ {
		c, reused, err := e.conn(ctx)
		if err != nil {
			return classifySMTP("connect", err)
		}
		stop := context.AfterFunc(ctx, func() { c.Close() })
		err = e.client.SendWithSMTPClient(c, msg)
		interrupted := !stop()
		if err == nil && !interrupted {
			e.put(c)
			return nil
		}
		c.Close()
		if interrupted {
			return fmt.Errorf("smtp: %w", ctx.Err())
		}
		var se *gomail.SendError
		if reused && attempt == 0 && errors.As(err, &se) && (se.Reason == gomail.ErrSMTPMailFrom || se.Reason == gomail.ErrConnCheck) && !hasCode(err) {
			continue // the idle connection was dead before the message started
		}
		return classifySMTP("send", err)
	}
}

// conn takes a pooled connection or dials one.
func (e *Email) conn(ctx context.Context) (*smtp.Client, bool, error) {
	e.mu.Lock()
	for len(e.pool) > 0 {
		p := e.pool[len(e.pool)-1]
		e.pool = e.pool[:len(e.pool)-1]
		if time.Since(p.used) < e.idle {
			e.mu.Unlock()
			return p.c, true, nil
		}
		go p.c.Quit()
	}
	e.mu.Unlock()
	c, err := e.client.DialToSMTPClientWithContext(ctx)
	return c, false, err
}

func (e *Email) put(c *smtp.Client) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || len(e.pool) >= cap(e.slots) {
		go c.Quit()
		return
	}
	e.pool = append(e.pool, pooled{c: c, used: time.Now()})
}

// Close closes the idle connections.
func (e *Email) Close() error {
	e.mu.Lock()
	pool := e.pool
	e.pool, e.closed = nil, true
	e.mu.Unlock()
	for _, p := range pool {
		p.c.Quit()
	}
	return nil
}

// hasCode reports whether err carries an SMTP reply code (the server
// answered, so the connection was alive).
func hasCode(err error) bool {
	var tp *textproto.Error
	if errors.As(err, &tp) {
		return true
	}
	var se *gomail.SendError
	return errors.As(err, &se) && se.ErrorCode() != 0
}

// classifySMTP wraps an SMTP failure in its class.
func classifySMTP(stage string, err error) error {
	var certErr *tls.CertificateVerificationError
	var hostErr x509.HostnameError
	var unknownCA x509.UnknownAuthorityError
	if errors.As(err, &certErr) || errors.As(err, &hostErr) || errors.As(err, &unknownCA) {
		return fmt.Errorf("smtp %s: %w: the server's TLS certificate did not verify: %v", stage, ErrMisconfigured, err)
	}
	if msg := err.Error(); strings.Contains(msg, "does not support STARTTLS") || strings.Contains(msg, "SMTP Auth") || strings.Contains(msg, "SMTP AUTH") {
		return fmt.Errorf("smtp %s: %w: %v", stage, ErrMisconfigured, err)
	}
	code := 0
	var tp *textproto.Error
	var se *gomail.SendError
	switch {
	case errors.As(err, &se) && se.ErrorCode() != 0:
		code = se.ErrorCode()
	case errors.As(err, &tp):
		code = tp.Code
	default:
		code = leadingCode(err.Error())
	}
	switch {
	case code == 535 || code == 530 || code == 534 || code == 538:
		return fmt.Errorf("smtp %s: %w: authentication refused: %v", stage, ErrMisconfigured, err)
	case code >= 500 && stage == "connect":
		return fmt.Errorf("smtp %s: %w: the server refused the session: %v", stage, ErrMisconfigured, err)
	case code >= 500:
		return fmt.Errorf("smtp %s: %w: %v", stage, ErrRejected, err)
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return fmt.Errorf("smtp %s: timed out: %w", stage, err)
	}
	return fmt.Errorf("smtp %s: %w", stage, err)
}

func leadingCode(s string) int {
	if len(s) < 3 {
		return 0
	}
	n, err := strconv.Atoi(s[:3])
	if err != nil {
		return 0
	}
	return n
}
