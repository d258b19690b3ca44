// Package smtpsink is a small real SMTP server on a loopback port for tests
// and benchmarks: it speaks EHLO, STARTTLS (or TLS from the first byte),
// AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP and QUIT, keeps (or just counts)
// what it receives, and can refuse at any stage with the reply a test asks
// for.
package smtpsink

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/mail"
	"net/textproto"
	"strings"
	"sync"
	"time"
)

// Stage is a point of the SMTP session where a Refuse hook may answer.
type Stage string

// The stages.
const (
	StageConnect Stage = "connect"
	StageMail    Stage = "mail"
	StageRcpt    Stage = "rcpt"
	StageData    Stage = "data" // after the message body, arg is the Message-ID
)

// Reply is an SMTP reply a hook returns; the zero Reply means "carry on".
type Reply struct {
	Code int
	Text string
}

// Options configure the server. The zero value is a plain server without
// authentication that accepts everything.
type Options struct {
	// TLS enables STARTTLS (or, with Implicit, TLS from the first byte).
	TLS      *tls.Config
	Implicit bool
	// RequireTLS refuses MAIL before STARTTLS (530).
	RequireTLS bool
	// Username and Password, when set, require AUTH PLAIN.
	Username, Password string
	// Refuse is consulted at each stage with its argument (the address for
	// mail and rcpt, the Message-ID for data, the remote address for
	// connect).
	Refuse func(stage Stage, arg string) Reply
	// Discard counts messages without keeping them (benchmarks).
	Discard bool
}

// Message is one message received.
type Message struct {
	From      string
	To        []string
	MessageID string
	Subject   string
	Data      []byte
	At        time.Time
}

// Server is a running sink.
type Server struct {
	opts Options
	ln   net.Listener
	wg   sync.WaitGroup

	mu       sync.Mutex
	msgs     []Message
	count    int
	sessions int
	conns    map[net.Conn]bool
	closed   bool
	arrived  chan struct{}
}

// Start listens on a free loopback port and serves until Close.
func Start(opts Options) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if opts.Implicit {
		if opts.TLS == nil {
			ln.Close()
			return nil, errors.New("smtpsink: Implicit needs a TLS config")
		}
		ln = tls.NewListener(ln, opts.TLS)
	}
	s := &Server{opts: opts, ln: ln, conns: map[net.Conn]bool{}, arrived: make(chan struct{}, 1)}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Addr is host:port of the server.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Port is the server's port.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Close stops the server and closes every session.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

// Messages returns the messages received so far (none with Discard).
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Count is how many messages were accepted.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// Sessions is how many connections were opened.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

// WaitFor waits until at least n messages were accepted or timeout passes,
// and reports whether they were.
func (s *Server) WaitFor(n int, timeout time.Duration) bool {
	deadline := time.After(timeout)
	for {
		if s.Count() >= n {
			return true
		}
		select {
		case <-s.arrived:
		case <-deadline:
			return s.Count() >= n
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = true
		s.sessions++
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.session(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

func (s *Server) refuse(stage Stage, arg string) Reply {
	if s.opts.Refuse == nil {
		return Reply{}
	}
	return s.opts.Refuse(stage, arg)
}

// session runs one SMTP conversation.
func (s *Server) session(c net.Conn) {
	tp := textproto.NewConn(c)
	reply := func(code int, text string) bool {
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		return tp.PrintfLine("%d %s", code, text) == nil
	}
	if r := s.refuse(StageConnect, c.RemoteAddr().String()); r.Code != 0 {
		reply(r.Code, r.Text)
		return
	}
	reply(220, "smtpsink ready")
	_, isTLS := c.(*tls.Conn)
	authed := s.opts.Username == ""
	var from string
	var rcpts []string
	for {
		c.SetReadDeadline(time.Now().Add(2 * time.Minute))
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			lines := []string{"smtpsink", "8BITMIME", "PIPELINING", "ENHANCEDSTATUSCODES", "SMTPUTF8"}
			if s.opts.TLS != nil && !isTLS {
				lines = append(lines, "STARTTLS")
			}
			if s.opts.Username != "" {
				lines = append(lines, "AUTH PLAIN")
			}
			for i, l := range lines {
				sep := "-"
				if i == len(lines)-1 {
					sep = " "
				}
				if tp.PrintfLine("250%s%s", sep, l) != nil {
					return
				}
			}
			from, rcpts = "", nil
		case "STARTTLS":
			if s.opts.TLS == nil || isTLS {
				reply(502, "5.5.1 STARTTLS not available")
				continue
			}
			reply(220, "2.0.0 go ahead")
			tc := tls.Server(c, s.opts.TLS)
			if err := tc.Handshake(); err != nil {
				return
			}
			s.mu.Lock()
			delete(s.conns, c)
			s.conns[tc] = true
			s.mu.Unlock()
			c, isTLS = tc, true
			tp = textproto.NewConn(c)
			from, rcpts = "", nil
		case "AUTH":
			mech, initial, _ := strings.Cut(arg, " ")
			if !strings.EqualFold(mech, "PLAIN") || s.opts.Username == "" {
				reply(504, "5.5.4 unrecognized authentication type")
				continue
			}
			if initial == "" {
				reply(334, "")
				if initial, err = tp.ReadLine(); err != nil {
					return
				}
			}
			raw, err := base64.StdEncoding.DecodeString(initial)
			parts := strings.Split(string(raw), "\x00")
			if err != nil || len(parts) != 3 || parts[1] != s.opts.Username || parts[2] != s.opts.Password {
				reply(535, "5.7.8 authentication credentials invalid")
				continue
			}
			authed = true
			reply(235, "2.7.0 authenticated")
		case "MAIL":
			if s.opts.RequireTLS && !isTLS {
				reply(530, "5.7.0 must issue STARTTLS first")
				continue
			}
			if !authed {
				reply(530, "5.7.0 authentication required")
				continue
			}
			addr := pathArg(arg, "FROM:")
			if r := s.refuse(StageMail, addr); r.Code != 0 {
				reply(r.Code, r.Text)
				continue
			}
			from, rcpts = addr, nil
			reply(250, "2.1.0 ok")
		case "RCPT":
			if from == "" {
				reply(503, "5.5.1 MAIL first")
				continue
			}
			addr := pathArg(arg, "TO:")
			if r := s.refuse(StageRcpt, addr); r.Code != 0 {
				reply(r.Code, r.Text)
				continue
			}
			rcpts = append(rcpts, addr)
			reply(250, "2.1.5 ok")
		case "DATA":
			if len(rcpts) == 0 {
				reply(503, "5.5.1 RCPT first")
				continue
			}
			reply(354, "end data with <CR><LF>.<CR><LF>")
			data, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			msg := Message{From: from, To: rcpts, Data: data, At: time.Now()}
			if !s.opts.Discard || s.opts.Refuse != nil {
				if m, err := mail.ReadMessage(bufio.NewReader(strings.NewReader(string(data)))); err == nil {
					msg.MessageID = m.Header.Get("Message-Id")
					msg.Subject = m.Header.Get("Subject")
				}
			}
			if r := s.refuse(StageData, msg.MessageID); r.Code != 0 {
				reply(r.Code, r.Text)
				from, rcpts = "", nil
				continue
			}
			s.mu.Lock()
			s.count++
			if !s.opts.Discard {
				s.msgs = append(s.msgs, msg)
			}
			s.mu.Unlock()
			select {
			case s.arrived <- struct{}{}:
			default:
			}
			reply(250, fmt.Sprintf("2.0.0 queued as %d", time.Now().UnixNano()))
			from, rcpts = "", nil
		case "RSET":
			from, rcpts = "", nil
			reply(250, "2.0.0 ok")
		case "NOOP":
			reply(250, "2.0.0 ok")
		case "QUIT":
			reply(221, "2.0.0 bye")
			return
		default:
			reply(502, "5.5.2 command not recognized")
		}
	}
}

// pathArg extracts the address of "FROM:<a@b> SIZE=…".
func pathArg(arg, prefix string) string {
	if len(arg) >= len(prefix) && strings.EqualFold(arg[:len(prefix)], prefix) {
		arg = arg[len(prefix):]
	}
	arg = strings.TrimSpace(arg)
	if i := strings.IndexByte(arg, '>'); strings.HasPrefix(arg, "<") && i > 0 {
		return arg[1:i]
	}
	addr, _, _ := strings.Cut(arg, " ")
	return addr
}

// SelfSignedTLS returns a server TLS config with a fresh certificate for
// 127.0.0.1, ::1 and localhost, and the pool that trusts it (for the
// client's RootCAs).
func SelfSignedTLS() (*tls.Config, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "smtpsink"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}, MinVersion: tls.VersionTLS12}, pool, nil
}
