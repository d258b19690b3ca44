package notify

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Outbox "sends" by writing one file per message into a folder: the demo's
// channel, and a way to see what would go out. The file is named after the
// message id, so a retried message overwrites its own file instead of adding
// one. Files appear whole (written aside, then renamed).
type Outbox struct {
	// Dir is the folder, created on first use.
	Dir string
	// Channel labels the files ("email" or "sms").
	Channel string
	// Now stamps the files (default time.Now).
	Now func() time.Time
}

// Path is where the message with id is written.
func (o *Outbox) Path(id string) string {
	return filepath.Join(o.Dir, safeName(id)+".txt")
}

// Send writes m to its file.
func (o *Outbox) Send(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if m.ID == "" {
		return fmt.Errorf("outbox: %w: message without an id", ErrRejected)
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Channel: %s\nTo: %s\n", o.Channel, m.To)
	if m.Subject != "" {
		fmt.Fprintf(&b, "Subject: %s\n", m.Subject)
	}
	fmt.Fprintf(&b, "Notice: %s\nDate: %s\n\n%s", m.ID, now().UTC().Format(time.RFC1123Z), m.Body)
	if !strings.HasSuffix(m.Body, "\n") {
		b.WriteByte('\n')
	}
	path := o.Path(m.ID)
	tmp, err := os.CreateTemp(o.Dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(b.String()); err != nil {
		tmp.Close()
		return fmt.Errorf("outbox: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}

// safeName keeps letters, digits, '-', '_' and '.' of id.
func safeName(id string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, id)
}
