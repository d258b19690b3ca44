package notify_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"selfserve/internal/notify"
	"selfserve/internal/notify/faketwilio"
	"selfserve/internal/notify/smtpsink"
	"selfserve/internal/rules"
)

func TestRenderEveryKind(t *testing.T) {
	t.Parallel()
	ny, _ := time.LoadLocation("America/New_York")
	london, _ := time.LoadLocation("Europe/London")
	expires := time.Date(2026, 3, 8, 14, 30, 0, 0, time.UTC) // the day New York springs forward
	cases := []struct {
		d       notify.Data
		subject string
		email   []string
		sms     []string
	}{
		{
			d:       notify.Data{Kind: rules.KindExpiryReminder, Name: "Ann Lee", Account: "ann@contoso.example", Customer: "Contoso", DaysLeft: 3, ExpiresAt: expires, Location: ny, Region: "US", Link: "https://reset.example"},
			subject: "Your Contoso password expires in 3 days",
			email:   []string{"Hello Ann Lee,", "expires in 3 days, on Sunday, March 8, 2026 at 10:30 AM EDT.", "https://reset.example"},
			sms:     []string{"Contoso: your password for ann@contoso.example expires in 3 days (Sunday, March 8, 2026).", "Change it: https://reset.example"},
		},
		{
			d:       notify.Data{Kind: rules.KindExpiryReminder, Name: "Bob", Account: "bob", Customer: "Fabrikam", DaysLeft: 1, ExpiresAt: expires, Location: london, Region: "GB"},
			subject: "Your Fabrikam password expires tomorrow",
			email:   []string{"expires tomorrow, on Sunday 8 March 2026 at 14:30 GMT.", "Please change it before then"},
			sms:     []string{"expires tomorrow (Sunday 8 March 2026)."},
		},
		{
			d:       notify.Data{Kind: rules.KindExpiryDay, Name: "Ann", Account: "ann", Customer: "Contoso", ExpiresAt: expires, Location: ny, Region: "US", Link: "https://reset.example"},
			subject: "Your Contoso password expires today",
			email:   []string{"expires today, at 10:30 AM EDT."},
			sms:     []string{"expires today at 10:30 AM EDT. Change it: https://reset.example"},
		},
		{
			d:       notify.Data{Kind: rules.KindLockout, Name: "Ann", Account: "ann", Customer: "Contoso", LockedOutAt: expires, Location: london, Region: "DE", Link: "https://reset.example"},
			subject: "Your Contoso account is locked",
			email:   []string{"was locked on Sunday 8 March 2026 at 14:30 GMT", "Unlock it yourself at https://reset.example"},
			sms:     []string{"was locked at 14:30 GMT. Unlock it: https://reset.example"},
		},
		{
			d:       notify.Data{Kind: rules.KindWelcome, Name: "Cy", Account: "cy", Customer: "Contoso", Link: "https://reset.example"},
			subject: "Reset your Contoso password yourself",
			email:   []string{"confirm your mobile number at https://reset.example"},
			sms:     []string{"Set it up: https://reset.example"},
		},
	}
	for _, c := range cases {
		r, err := notify.Render(c.d)
		if err != nil {
			t.Fatalf("%s: %v", c.d.Kind, err)
		}
		if r.Subject != c.subject {
			t.Errorf("%s subject %q, want %q", c.d.Kind, r.Subject, c.subject)
		}
		for _, want := range c.email {
			if !strings.Contains(r.Email, want) {
				t.Errorf("%s email lacks %q:\n%s", c.d.Kind, want, r.Email)
			}
		}
		for _, want := range c.sms {
			if !strings.Contains(r.SMS, want) {
				t.Errorf("%s sms lacks %q: %s", c.d.Kind, want, r.SMS)
			}
		}
		if len(r.SMS) > 320 {
			t.Errorf("%s sms is %d characters: more than two segments", c.d.Kind, len(r.SMS))
		}
	}
	if _, err := notify.Render(notify.Data{Kind: "nagging"}); err == nil {
		t.Fatal("an unknown kind rendered")
	}
}

type sink struct {
	*smtpsink.Server
	email *notify.Email
}

func newSink(t *testing.T, opts smtpsink.Options, cfg notify.EmailConfig) sink {
	t.Helper()
	srv, err := smtpsink.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cfg.Host, cfg.Port = "127.0.0.1", srv.Port()
	if cfg.From == "" {
		cfg.From = "Password reminders <noreply@msp.example>"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	e, err := notify.NewEmail(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return sink{srv, e}
}

func TestEmailStartTLSVerifiedAuthAndPooled(t *testing.T) {
	t.Parallel()
	serverTLS, roots, err := smtpsink.SelfSignedTLS()
	if err != nil {
		t.Fatal(err)
	}
	s := newSink(t, smtpsink.Options{TLS: serverTLS, RequireTLS: true, Username: "selfserve", Password: "s3cret-pw"},
		notify.EmailConfig{RootCAs: roots, Username: "selfserve", Password: "s3cret-pw"})
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if err := s.email.Send(ctx, notify.Message{ID: fmt.Sprintf("notice-%d-email", i), To: fmt.Sprintf("u%d@contoso.example", i), Subject: "hi", Body: "body\n"}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range 20 {
		if err := s.email.Send(ctx, notify.Message{ID: fmt.Sprintf("notice-%d-email", 100+i), To: "seq@contoso.example", Subject: "hi", Body: "b"}); err != nil {
			t.Fatal(err)
		}
	}
	if s.Count() != 40 {
		t.Fatalf("sink got %d messages, want 40", s.Count())
	}
	if s.Sessions() > 20 {
		t.Fatalf("%d SMTP sessions for 40 messages: connections are not reused", s.Sessions())
	}
	ids := map[string]bool{}
	for _, m := range s.Messages() {
		ids[m.MessageID] = true
	}
	if !ids["<notice-7-email@msp.example>"] {
		t.Fatalf("deterministic Message-ID missing; got e.g. %v", s.Messages()[0].MessageID)
	}
}

func TestEmailRefusesUnverifiedCertificate(t *testing.T) {
	t.Parallel()
	serverTLS, _, err := smtpsink.SelfSignedTLS()
	if err != nil {
		t.Fatal(err)
	}
	s := newSink(t, smtpsink.Options{TLS: serverTLS}, notify.EmailConfig{})
	err = s.email.Send(context.Background(), notify.Message{ID: "n-1", To: "a@b.example", Subject: "s", Body: "b"})
	if !errors.Is(err, notify.ErrMisconfigured) || s.Count() != 0 {
		t.Fatalf("self-signed certificate: err=%v, delivered=%d; want ErrMisconfigured and nothing sent", err, s.Count())
	}
	plain := newSink(t, smtpsink.Options{}, notify.EmailConfig{})
	err = plain.email.Send(context.Background(), notify.Message{ID: "n-2", To: "a@b.example", Subject: "s", Body: "b"})
	if !errors.Is(err, notify.ErrMisconfigured) || plain.Count() != 0 {
		t.Fatalf("server without STARTTLS: err=%v; want ErrMisconfigured", err)
	}
}

func TestEmailClassifiesRefusals(t *testing.T) {
	t.Parallel()
	s := newSink(t, smtpsink.Options{Refuse: func(stage smtpsink.Stage, arg string) smtpsink.Reply {
		switch {
		case stage == smtpsink.StageRcpt && strings.HasPrefix(arg, "gone@"):
			return smtpsink.Reply{Code: 550, Text: "5.1.1 mailbox unavailable"}
		case stage == smtpsink.StageRcpt && strings.HasPrefix(arg, "busy@"):
			return smtpsink.Reply{Code: 451, Text: "4.3.0 try again later"}
		}
		return smtpsink.Reply{}
	}}, notify.EmailConfig{TLS: notify.TLSNone})
	ctx := context.Background()
	err := s.email.Send(ctx, notify.Message{ID: "a", To: "gone@x.example", Body: "b"})
	if !errors.Is(err, notify.ErrRejected) || !strings.Contains(err.Error(), "mailbox unavailable") {
		t.Fatalf("550: %v, want ErrRejected with the server's words", err)
	}
	err = s.email.Send(ctx, notify.Message{ID: "b", To: "busy@x.example", Body: "b"})
	if err == nil || notify.IsPermanent(err) {
		t.Fatalf("451: %v, want a temporary error", err)
	}
	if err := s.email.Send(ctx, notify.Message{ID: "c", To: "fine@x.example", Body: "b"}); err != nil {
		t.Fatalf("a good recipient after refusals: %v", err)
	}
	serverTLS, roots, err := smtpsink.SelfSignedTLS()
	if err != nil {
		t.Fatal(err)
	}
	bad := newSink(t, smtpsink.Options{TLS: serverTLS, Username: "u", Password: "right"}, notify.EmailConfig{RootCAs: roots, Username: "u", Password: "wrong-pw-123"})
	err = bad.email.Send(ctx, notify.Message{ID: "d", To: "fine@x.example", Body: "b"})
	if !errors.Is(err, notify.ErrMisconfigured) || strings.Contains(err.Error(), "wrong-pw-123") {
		t.Fatalf("bad password: %v, want ErrMisconfigured without the password", err)
	}
	down := newSink(t, smtpsink.Options{Refuse: func(stage smtpsink.Stage, _ string) smtpsink.Reply {
		if stage == smtpsink.StageConnect {
			return smtpsink.Reply{Code: 421, Text: "4.3.2 service not available"}
		}
		return smtpsink.Reply{}
	}}, notify.EmailConfig{TLS: notify.TLSNone})
	err = down.email.Send(ctx, notify.Message{ID: "e", To: "fine@x.example", Body: "b"})
	if err == nil || notify.IsPermanent(err) {
		t.Fatalf("421 at connect: %v, want a temporary error", err)
	}
}

func TestSMS(t *testing.T) {
	t.Parallel()
	fake := faketwilio.New("AC00000000000000000000000000000001", "tok-secret-42")
	defer fake.Close()
	sms, err := notify.NewSMS(notify.SMSConfig{BaseURL: fake.URL, AccountSID: fake.AccountSID, AuthToken: "tok-secret-42", From: "+12025550100"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := sms.Send(ctx, notify.Message{ID: "notice-1-sms", To: "+447700900123", Body: "hello"}); err != nil {
		t.Fatal(err)
	}
	got := fake.Messages()
	if len(got) != 1 || got[0].To != "+447700900123" || got[0].From != "+12025550100" || got[0].IdempotencyKey != "notice-1-sms" {
		t.Fatalf("fake got %+v", got)
	}
	fake.SetFault(func(to string, n int) *faketwilio.Fault {
		switch to {
		case "+447700900001":
			return &faketwilio.Fault{Status: http.StatusTooManyRequests, RetryAfter: "7", Code: 20429, Message: "Too Many Requests"}
		case "+447700900002":
			return &faketwilio.Fault{Status: http.StatusInternalServerError, Code: 20500, Message: "Internal Server Error"}
		}
		return nil
	})
	err = sms.Send(ctx, notify.Message{ID: "x", To: "+447700900001", Body: "b"})
	if d, ok := notify.RetryAfter(err); !ok || d != 7*time.Second {
		t.Fatalf("429: %v, want a throttle of 7s", err)
	}
	err = sms.Send(ctx, notify.Message{ID: "y", To: "+447700900002", Body: "b"})
	if err == nil || notify.IsPermanent(err) || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("500: %v, want a temporary error naming the status", err)
	}
	err = sms.Send(ctx, notify.Message{ID: "z", To: "07700900003", Body: "b"})
	if !errors.Is(err, notify.ErrRejected) || !strings.Contains(err.Error(), "21211") {
		t.Fatalf("invalid number: %v, want ErrRejected with Twilio's code", err)
	}
	wrong, _ := notify.NewSMS(notify.SMSConfig{BaseURL: fake.URL, AccountSID: fake.AccountSID, AuthToken: "not-the-token", From: "+12025550100"})
	err = wrong.Send(ctx, notify.Message{ID: "w", To: "+447700900123", Body: "b"})
	if !errors.Is(err, notify.ErrMisconfigured) || strings.Contains(err.Error(), "not-the-token") {
		t.Fatalf("bad token: %v, want ErrMisconfigured without the token", err)
	}
	if _, err := notify.NewSMS(notify.SMSConfig{BaseURL: "http://sms.example.com", AccountSID: "AC1", AuthToken: "t", From: "+1"}); !errors.Is(err, notify.ErrMisconfigured) {
		t.Fatalf("plain http to a remote host: %v", err)
	}
}

func TestOutboxOneFilePerNotice(t *testing.T) {
	t.Parallel()
	o := &notify.Outbox{Dir: t.TempDir(), Channel: "email"}
	m := notify.Message{ID: "notice-9-email", To: "a@b.example", Subject: "Your password", Body: "first"}
	if err := o.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	m.Body = "second"
	if err := o.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(o.Dir)
	if len(entries) != 1 {
		t.Fatalf("%d files after sending one notice twice", len(entries))
	}
	b, _ := os.ReadFile(o.Path(m.ID))
	if !strings.Contains(string(b), "Subject: Your password") || !strings.Contains(string(b), "second") {
		t.Fatalf("outbox file:\n%s", b)
	}
}
