// Package notify delivers rendered notices to end users: email over SMTP
// (Email), SMS through a Twilio-compatible REST API (SMS), and an outbox
// folder that writes one file per notice instead (Outbox, for the demo). It
// also holds the message templates (Render).
//
// A channel knows nothing of the ledger, the queue or the domain rules: it is
// handed a Message and says whether the provider accepted it. Its errors are
// classified for the caller: ErrRejected (the provider refused this message
// for good: retrying cannot help), ErrMisconfigured (credentials, TLS or
// sender refused: retrying cannot help until someone fixes the
// configuration), *ThrottledError (the provider asked us to slow down, with
// how long to wait), and anything else is temporary (retry with backoff).
//
// Exactly once, and its limit. A provider that accepts a message and then
// loses the connection before we read its answer leaves us unable to know
// whether it was sent; so does a process killed between the provider's
// answer and the caller recording it. The caller retries such a message, and
// the end user may receive it twice. Email carries a Message-ID derived from
// the ledger row (Message.ID), the same on every attempt, which receiving
// systems and mail clients use to fold duplicates; the SMS request carries
// the same id as an Idempotency-Key header for providers that honour one
// (Twilio itself documents no idempotency key for sending messages).
package notify

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"
)

// Message is one notice rendered for one channel.
type Message struct {
	// ID identifies the notice and attempt-independently names it: the same
	// on every retry (e.g. "notice-42-email"). Email derives its Message-ID
	// from it, the outbox its file name.
	ID string
	// To is the email address or the E.164 mobile number.
	To string
	// Subject is the email subject (unused by SMS).
	Subject string
	// Body is the plain-text body.
	Body string
}

// Sender delivers messages over one channel.
type Sender interface {
	// Send delivers m, returning nil once the provider accepted it.
	Send(ctx context.Context, m Message) error
}

// ProviderPanicError reports a sender whose Send panicked: a failed send
// like any temporary provider error (retried, then failed), not a dead
// process.
type ProviderPanicError struct {
	// Value is what the sender panicked with; Stack is where.
	Value any
	Stack []byte
}

// Error implements error.
func (e *ProviderPanicError) Error() string { return fmt.Sprintf("provider panicked: %v", e.Value) }

// Deliver hands m to sender, turning a panic of the sender into a
// *ProviderPanicError, so that one faulty provider cannot take down a
// process that sends from goroutines of its own.
func Deliver(ctx context.Context, sender Sender, m Message) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &ProviderPanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return sender.Send(ctx, m)
}

// Classes of delivery failure. Channels wrap them with %w and the
// provider's own words.
var (
	// ErrRejected: the provider refused this message for good (unknown
	// mailbox, invalid number, message too large). Retrying cannot help.
	ErrRejected = errors.New("rejected by the provider")
	// ErrMisconfigured: the provider refused our credentials, our sender or
	// its TLS certificate did not verify. Retrying cannot help until the
	// configuration is fixed.
	ErrMisconfigured = errors.New("channel misconfigured")
)

// ThrottledError reports that the provider asked us to slow down.
type ThrottledError struct {
	// RetryAfter is how long the provider asked us to wait (0: it did not
	// say).
	RetryAfter time.Duration
	// Message is the provider's own words.
	Message string
}

// Error implements error.
func (e *ThrottledError) Error() string {
	msg := "throttled by the provider"
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(", retry after %s", e.RetryAfter)
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// IsPermanent reports whether retrying err cannot help: the message was
// rejected or the channel is misconfigured.
func IsPermanent(err error) bool {
	return errors.Is(err, ErrRejected) || errors.Is(err, ErrMisconfigured)
}

// RetryAfter returns how long a throttled err asks to wait, and whether err
// is a throttle at all.
func RetryAfter(err error) (time.Duration, bool) {
	var t *ThrottledError
	if errors.As(err, &t) {
		return t.RetryAfter, true
	}
	return 0, false
}
