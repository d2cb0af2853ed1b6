package mail

import (
	"context"
	"errors"
	"fmt"
	netmail "net/mail"
	"strings"
	"time"

	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/templates"
)

// ErrInvalidAddress is returned by Mailer.Send for a recipient that is not
// one plain address (user@domain, nothing else).
var ErrInvalidAddress = errors.New("mail: invalid recipient address")

// Enqueuer is what Mailer needs of the store.
type Enqueuer interface {
	EnqueueMail(ctx context.Context, m store.Mail) (int64, error)
}

var _ Enqueuer = (*store.DB)(nil)

// Mailer renders email templates into the outbox. It sends nothing itself:
// a Worker delivers what it enqueues.
type Mailer struct {
	Store     Enqueuer
	Templates *templates.Set
	Now       func() time.Time
}

// Send renders email template templateName (templates/mail/NAME.txt and
// NAME.html) with data and puts the message to to in the outbox. When ctx
// carries a store transaction the message joins it, so it is delivered only
// if that transaction commits. A Worker polling the outbox picks it up; call
// Worker.Nudge after the commit to deliver at once. It returns the
// message's outbox id.
func (m *Mailer) Send(ctx context.Context, to, templateName string, data any) (int64, error) {
	addr, err := checkAddress(to)
	if err != nil {
		return 0, err
	}
	subject, text, html, err := m.Templates.Mail(templateName, data)
	if err != nil {
		return 0, fmt.Errorf("mail %s: %w", templateName, err)
	}
	msg := store.Mail{
		Recipient: addr,
		// A subject is one header line: a line break from template data
		// must not start a header of its own.
		Subject:   oneLine(subject),
		Text:      text,
		HTML:      html,
		CreatedAt: m.Now(),
	}
	id, err := m.Store.EnqueueMail(ctx, msg)
	if err != nil {
		return 0, fmt.Errorf("mail %s: %w", templateName, err)
	}
	return id, nil
}

// maxAddressLen is the longest address SMTP can carry (RFC 5321's 256-octet
// path, less the angle brackets).
const maxAddressLen = 254

// checkAddress accepts a single bare address, exactly as given: no display
// name, no list, no surrounding space, nothing that could add a header or a
// second recipient.
func checkAddress(to string) (string, error) {
	if to == "" || len(to) > maxAddressLen || strings.ContainsAny(to, "\r\n") {
		return "", ErrInvalidAddress
	}
	a, err := netmail.ParseAddress(to)
	if err != nil || a.Name != "" || a.Address != to {
		return "", ErrInvalidAddress
	}
	return a.Address, nil
}

// oneLine replaces line breaks and other control characters with spaces.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
