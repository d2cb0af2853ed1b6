package mail_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/twofold-id/twofold/mail"
	"github.com/twofold-id/twofold/store/storetest"
	"github.com/twofold-id/twofold/templates"
)

// TestMailerSend: the rendered message is in the outbox, and only if the
// caller's transaction commits.
func TestMailerSend(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		e := newEnvOn(t, b)
		e.send(t, "ada@example.com")
		subject, text, html, err := e.tmpl.Mail("test", dataFor("ada@example.com"))
		if err != nil {
			t.Fatal(err)
		}
		m := e.getMail(t, 1)
		if m.Recipient != "ada@example.com" || m.Subject != subject || m.Text != text || m.HTML != html ||
			!m.CreatedAt.Equal(t0) || !m.NextAttemptAt.Equal(t0) || m.Attempts != 0 {
			t.Fatalf("enqueued %+v", m)
		}

		rollback := errors.New("rollback")
		err = e.db.InTx(ctx, func(ctx context.Context) error {
			if _, err := e.mailer.Send(ctx, "bob@example.com", "test", dataFor("bob")); err != nil {
				return err
			}
			return rollback
		})
		if !errors.Is(err, rollback) {
			t.Fatalf("transaction: %v", err)
		}
		must(t, e.db.InTx(ctx, func(ctx context.Context) error {
			_, err := e.mailer.Send(ctx, "cy@example.com", "test", dataFor("cy"))
			return err
		}))
		list, err := e.db.ListMail(ctx, 10)
		must(t, err)
		if len(list) != 2 || list[0].Recipient != "cy@example.com" || list[1].Recipient != "ada@example.com" {
			t.Fatalf("outbox after a rolled-back and a committed send: %+v", list)
		}
	})
}

// TestMailerRefuses: a bad recipient or template enqueues nothing.
func TestMailerRefuses(t *testing.T) {
	e := newEnv(t, storetest.SQLite().Open(t))
	for _, to := range []string{
		"", "ada", "ada@", "@example.com", " ada@example.com", "ada@example.com ",
		"Ada <ada@example.com>", "<ada@example.com>", "ada@example.com, eve@example.com",
		"ada@example.com\r\nBcc: eve@example.com", "ada@example.com\n", strings.Repeat("a", 250) + "@example.com",
	} {
		if _, err := e.mailer.Send(ctx, to, "test", dataFor("x")); !errors.Is(err, mail.ErrInvalidAddress) {
			t.Errorf("Send to %q: %v, want ErrInvalidAddress", to, err)
		}
	}
	if _, err := e.mailer.Send(ctx, "ada@example.com", "no-such-template", nil); err == nil {
		t.Error("Send with an unknown template succeeded")
	}
	if list, _ := e.db.ListMail(ctx, 10); len(list) != 0 {
		t.Fatalf("refused sends enqueued %+v", list)
	}
}

// TestMailerSubjectOneLine: a line break reaching the subject (here from
// the operator's brand name) is flattened before it is stored.
func TestMailerSubjectOneLine(t *testing.T) {
	e := newEnv(t, storetest.SQLite().Open(t))
	tmpl, err := templates.Load(templates.Brand{Name: "Acme\r\nBcc: eve@example.com"}, "")
	must(t, err)
	m := &mail.Mailer{Store: e.db, Templates: tmpl, Now: e.clock.Now}
	_, err = m.Send(ctx, "ada@example.com", "test", dataFor("ada"))
	must(t, err)
	if got := e.getMail(t, 1).Subject; strings.ContainsAny(got, "\r\n") || !strings.Contains(got, "Acme") {
		t.Fatalf("subject = %q", got)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
