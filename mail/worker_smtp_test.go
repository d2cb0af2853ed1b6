package mail_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/twofold-id/twofold/mail"
	"github.com/twofold-id/twofold/mail/mailtest"
	"github.com/twofold-id/twofold/store/storetest"
)

const (
	smtpUser = "mailer"
	smtpPass = "s3cret pass/word"
)

// TestWorkerAuth: with credentials in the URL the worker logs in (PLAIN,
// or LOGIN when that is all the server offers); with wrong or missing ones
// nothing is delivered and the message waits for a retry.
func TestWorkerAuth(t *testing.T) {
	creds := func(user, pass string) func(*mail.SMTPConfig) {
		return func(c *mail.SMTPConfig) { c.Username, c.Password = user, pass }
	}
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		for _, mechs := range [][]string{{sasl.Plain}, {sasl.Login}} {
			t.Run(mechs[0], func(t *testing.T) {
				e := newEnvOn(t, b)
				srv := mailtest.Start(t, "127.0.0.1:0", mailtest.Options{User: smtpUser, Pass: smtpPass, Mechs: mechs})
				// The URL form, percent-encoded, is what operators write.
				cfg, err := mail.ParseSMTPURL("smtp://mailer:s3cret%20pass%2Fword@" + srv.Addr())
				if err != nil {
					t.Fatal(err)
				}
				e.send(t, "ada@example.com")
				deliver(t, e.worker(t, srv.Addr(), creds(cfg.Username, cfg.Password)), 1)
				if msgs := srv.Messages(); len(msgs) != 1 || msgs[0].AuthUser != smtpUser {
					t.Fatalf("received %+v, want one message after AUTH as %s", msgs, smtpUser)
				}
			})
		}
		for name, edit := range map[string]func(*mail.SMTPConfig){
			"WrongPassword": creds(smtpUser, "guess"),
			"NoCredentials": nil,
		} {
			t.Run(name, func(t *testing.T) {
				e := newEnvOn(t, b)
				srv := mailtest.Start(t, "127.0.0.1:0", mailtest.Options{User: smtpUser, Pass: smtpPass})
				e.send(t, "ada@example.com")
				deliver(t, e.worker(t, srv.Addr(), edit), 0)
				m := e.getMail(t, 1)
				if len(srv.Messages()) != 0 || m.LastError == "" || e.backlog(t) != 1 {
					t.Fatalf("refused login: received %d, mail %+v", len(srv.Messages()), m)
				}
				if strings.Contains(m.LastError, smtpPass) || strings.Contains(m.LastError, "guess") ||
					strings.Contains(e.logs.String(), "guess") {
					t.Fatalf("a password reached the error or the log: %q", m.LastError)
				}
				// Fixed credentials deliver it at the next attempt, once.
				e.clock.Advance(30 * time.Second)
				deliver(t, e.worker(t, srv.Addr(), creds(smtpUser, smtpPass)), 1)
				if got := recipients(srv.Messages()); got["ada@example.com"] != 1 {
					t.Fatalf("received %v", got)
				}
			})
		}
	})
}

// TestWorkerSTARTTLS: a server offering STARTTLS gets TLS (and the login
// inside it); a server whose certificate does not verify gets nothing, not
// a plain-text fallback.
func TestWorkerSTARTTLS(t *testing.T) {
	e := newEnv(t, storetest.SQLite().Open(t))
	serverTLS, roots := mailtest.SelfSigned(t)
	srv := mailtest.Start(t, "127.0.0.1:0", mailtest.Options{TLS: serverTLS, User: smtpUser, Pass: smtpPass})
	e.send(t, "ada@example.com")

	untrusted := e.worker(t, srv.Addr(), func(c *mail.SMTPConfig) { c.Username, c.Password = smtpUser, smtpPass })
	deliver(t, untrusted, 0)
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("sent to a server whose certificate does not verify (%d)", n)
	}
	if m := e.getMail(t, 1); !strings.Contains(m.LastError, "certificate") {
		t.Fatalf("last error = %q, want a certificate error", m.LastError)
	}

	e.clock.Advance(30 * time.Second)
	trusted := e.worker(t, srv.Addr(), func(c *mail.SMTPConfig) {
		c.Username, c.Password, c.RootCAs = smtpUser, smtpPass, roots
	})
	deliver(t, trusted, 1)
	if msgs := srv.Messages(); len(msgs) != 1 || !msgs[0].TLS || msgs[0].AuthUser != smtpUser {
		t.Fatalf("received %+v, want one message over TLS after AUTH", msgs)
	}
}

// TestWorkerImplicitTLS: smtps:// speaks TLS from the first byte.
func TestWorkerImplicitTLS(t *testing.T) {
	e := newEnv(t, storetest.SQLite().Open(t))
	serverTLS, roots := mailtest.SelfSigned(t)
	srv := mailtest.Start(t, "127.0.0.1:0", mailtest.Options{TLS: serverTLS, Implicit: true})
	cfg, err := mail.ParseSMTPURL("smtps://" + srv.Addr())
	if err != nil || !cfg.ImplicitTLS {
		t.Fatalf("parse smtps url: %+v, %v", cfg, err)
	}
	e.send(t, "ada@example.com")
	deliver(t, e.worker(t, srv.Addr(), func(c *mail.SMTPConfig) { c.ImplicitTLS, c.RootCAs = true, roots }), 1)
	if msgs := srv.Messages(); len(msgs) != 1 || !msgs[0].TLS {
		t.Fatalf("received %+v, want one message over TLS", msgs)
	}
}

// TestWorkersDeliverEachMessageOnce: two workers on two database handles
// (as two processes would be) drain one outbox concurrently; each message
// is delivered exactly once.
func TestWorkersDeliverEachMessageOnce(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		url := b.URL(t)
		e := newEnv(t, storetest.OpenURL(t, url))
		other := storetest.OpenURL(t, url)
		srv := mailtest.Start(t, "127.0.0.1:0", mailtest.Options{})
		const messages = 24
		for i := range messages {
			e.send(t, user(i))
		}
		workers := []*mail.Worker{e.worker(t, srv.Addr(), nil), e.workerOn(t, other, srv.Addr(), nil)}
		var wg sync.WaitGroup
		counts := make([]int, len(workers))
		for i, w := range workers {
			wg.Go(func() {
				n, err := w.DeliverDue(ctx)
				if err != nil {
					t.Errorf("worker %d: %v", i, err)
				}
				counts[i] = n
			})
		}
		wg.Wait()
		if counts[0]+counts[1] != messages {
			t.Fatalf("workers delivered %v, want %d in all", counts, messages)
		}
		got := recipients(srv.Messages())
		if len(got) != messages {
			t.Fatalf("%d distinct recipients, want %d", len(got), messages)
		}
		for to, n := range got {
			if n != 1 {
				t.Fatalf("%s received %d copies", to, n)
			}
		}
		if e.backlog(t) != 0 {
			t.Fatalf("backlog after draining = %d", e.backlog(t))
		}
	})
}
