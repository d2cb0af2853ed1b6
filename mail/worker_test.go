package mail_test

import (
	"context"
	"errors"
	"mime"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	"github.com/twofold-id/twofold/mail"
	"github.com/twofold-id/twofold/mail/mailtest"
	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
)

// TestWorkerDelivers: a message reaches the server once, to the right
// recipient, with its subject and both parts.
func TestWorkerDelivers(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		e := newEnvOn(t, b)
		srv := mailtest.Start(t, "127.0.0.1:0", mailtest.Options{})
		e.send(t, "ada@example.com")
		e.clock.Advance(time.Second)
		w := e.worker(t, srv.Addr(), nil)
		deliver(t, w, 1)

		msgs := srv.Messages()
		if len(msgs) != 1 || len(msgs[0].To) != 1 || msgs[0].To[0] != "ada@example.com" || msgs[0].From != "noreply@example.com" {
			t.Fatalf("server received %+v", msgs)
		}
		subject, text, html, err := e.tmpl.Mail("test", dataFor("ada@example.com"))
		if err != nil {
			t.Fatal(err)
		}
		p := msgs[0]
		if ct, _, err := mime.ParseMediaType(p.Header.Get("Content-Type")); err != nil || ct != "multipart/alternative" {
			t.Errorf("Content-Type = %q, want multipart/alternative", p.Header.Get("Content-Type"))
		}
		if p.Subject != subject {
			t.Errorf("Subject = %q, want %q", p.Subject, subject)
		}
		if to, err := netmail.ParseAddress(p.Header.Get("To")); err != nil || to.Address != "ada@example.com" {
			t.Errorf("To = %q", p.Header.Get("To"))
		}
		if from, err := netmail.ParseAddress(p.Header.Get("From")); err != nil || from.Address != "noreply@example.com" || from.Name != "twofold" {
			t.Errorf("From = %q", p.Header.Get("From"))
		}
		if p.Text != text || p.HTML != html {
			t.Errorf("text part = %q, want %q\nhtml part = %q, want %q", p.Text, text, p.HTML, html)
		}
		if !strings.Contains(p.HTML, "&lt;b&gt;") {
			t.Errorf("HTML part does not escape template data: %q", p.HTML)
		}
		if got := p.Header.Get("Auto-Submitted"); got != "auto-generated" {
			t.Errorf("Auto-Submitted = %q", got)
		}
		if got := p.Header.Get("User-Agent") + p.Header.Get("X-Mailer"); got != "" {
			t.Errorf("message names its mailer: %q", got)
		}
		if id := p.Header.Get("Message-Id"); !strings.HasPrefix(id, "<twofold.1.") || !strings.HasSuffix(id, "@example.com>") {
			t.Errorf("Message-ID = %q", id)
		}

		m := e.getMail(t, 1)
		if !m.SentAt.Equal(t0.Add(time.Second)) || m.Attempts != 1 || m.LastError != "" {
			t.Fatalf("after delivery: %+v", m)
		}
		// Nothing is sent twice.
		e.clock.Advance(time.Hour)
		deliver(t, w, 0)
		if n := len(srv.Messages()); n != 1 {
			t.Fatalf("server has %d messages after a second pass, want 1", n)
		}
	})
}

// TestWorkerHeaderInjection: a line break in a stored subject cannot add a
// header or a recipient.
func TestWorkerHeaderInjection(t *testing.T) {
	e := newEnv(t, storetest.SQLite().Open(t))
	srv := mailtest.Start(t, "127.0.0.1:0", mailtest.Options{})
	_, err := e.db.EnqueueMail(ctx, store.Mail{Recipient: "ada@example.com", Subject: "Hi\r\nBcc: eve@example.com\r\n\r\nbody",
		Text: "text", HTML: "<p>html</p>", CreatedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, e.worker(t, srv.Addr(), nil), 1)
	msgs := srv.Messages()
	if len(msgs) != 1 || strings.Join(msgs[0].To, ",") != "ada@example.com" {
		t.Fatalf("envelope recipients = %+v", msgs)
	}
	p := msgs[0]
	if len(p.Header["Bcc"]) != 0 || len(p.Header["Subject"]) != 1 || p.Text != "text" {
		t.Fatalf("injected header: %v", p.Header)
	}
}

// TestWorkerRetriesWhileSMTPDown: with the server gone nothing is lost; the
// message is retried after its back-off, not before, and delivered once
// the server is back.
func TestWorkerRetriesWhileSMTPDown(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		e := newEnvOn(t, b)
		srv := mailtest.Start(t, "127.0.0.1:0", mailtest.Options{})
		addr := srv.Addr()
		srv.Close()
		e.send(t, "ada@example.com")
		w := e.worker(t, addr, nil)
		deliver(t, w, 0)
		m := e.getMail(t, 1)
		if m.Attempts != 1 || !m.SentAt.IsZero() || m.LastError == "" || !m.NextAttemptAt.Equal(t0.Add(30*time.Second)) {
			t.Fatalf("after a failed attempt: %+v", m)
		}
		if e.backlog(t) != 1 {
			t.Fatal("failed message left the backlog")
		}

		srv = mailtest.Start(t, addr, mailtest.Options{})
		e.clock.Advance(29 * time.Second)
		deliver(t, w, 0)
		if n := len(srv.Messages()); n != 0 {
			t.Fatalf("retried before its back-off: %d messages", n)
		}
		e.clock.Advance(time.Second)
		deliver(t, w, 1)
		e.clock.Advance(time.Hour)
		deliver(t, w, 0)
		if got := recipients(srv.Messages()); len(got) != 1 || got["ada@example.com"] != 1 {
			t.Fatalf("server received %v, want ada once", got)
		}
		if m := e.getMail(t, 1); m.Attempts != 2 || m.SentAt.IsZero() || m.LastError != "" {
			t.Fatalf("after delivery: %+v", m)
		}
	})
}

// TestWorkerBacksOffAndGivesUp: with no server ever listening, attempts
// come 30 s, 1 m, 2 m … 1 h apart, and the first failure a day after the
// message was enqueued gives it up for good.
func TestWorkerBacksOffAndGivesUp(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		e := newEnvOn(t, b)
		addr := mailtest.FreeAddr(t)
		e.send(t, "ada@example.com")
		w := e.worker(t, addr, nil)
		for attempt := 1; ; attempt++ {
			deliver(t, w, 0)
			m := e.getMail(t, 1)
			if m.Attempts != attempt || m.LastError == "" {
				t.Fatalf("attempt %d: %+v", attempt, m)
			}
			if e.backlog(t) == 0 {
				// 30 s + 1 m + … + 32 m = 63.5 m, then hourly: the 31st
				// attempt is the first at least 24 h after t0.
				if attempt != 31 || e.clock.Now().Sub(t0) < 24*time.Hour {
					t.Fatalf("given up at attempt %d, %v after enqueueing", attempt, e.clock.Now().Sub(t0))
				}
				break
			}
			want := time.Hour
			if attempt <= 7 {
				want = 30 * time.Second << (attempt - 1)
			}
			if got := m.NextAttemptAt.Sub(e.clock.Now()); got != want {
				t.Fatalf("after attempt %d the wait is %v, want %v", attempt, got, want)
			}
			e.clock.Set(m.NextAttemptAt)
		}
		// Given up is final: the server coming back changes nothing.
		srv := mailtest.Start(t, addr, mailtest.Options{})
		e.clock.Advance(48 * time.Hour)
		deliver(t, w, 0)
		if n := len(srv.Messages()); n != 0 {
			t.Fatalf("a given-up message was sent (%d)", n)
		}
	})
}

// TestWorkerGivesUpAfterTooManyClaims: a message whose workers keep dying
// mid-send is claimed again after each lease, but not forever.
func TestWorkerGivesUpAfterTooManyClaims(t *testing.T) {
	e := newEnv(t, storetest.SQLite().Open(t))
	srv := mailtest.Start(t, "127.0.0.1:0", mailtest.Options{})
	e.send(t, "ada@example.com")
	for range 100 {
		if _, err := e.db.ClaimMail(ctx, e.clock.Now(), mail.DefaultLease); err != nil {
			t.Fatalf("claim: %v", err)
		}
		e.clock.Advance(mail.DefaultLease) // the claimant died
	}
	deliver(t, e.worker(t, srv.Addr(), nil), 0)
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("sent on the 101st claim (%d)", n)
	}
	if m := e.getMail(t, 1); e.backlog(t) != 0 || !strings.Contains(m.LastError, "gave up after 100 attempts") {
		t.Fatalf("not given up: %+v", m)
	}
}

// TestWorkerFinishesSendOnShutdown: when ctx ends during a conversation,
// the message is still delivered and recorded as sent, so it is not sent
// again; the messages after it wait for the next run.
func TestWorkerFinishesSendOnShutdown(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		e := newEnvOn(t, b)
		runCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		srv := mailtest.Start(t, "127.0.0.1:0", mailtest.Options{OnData: cancel})
		e.send(t, user(1))
		e.send(t, user(2))
		n, err := e.worker(t, srv.Addr(), nil).DeliverDue(runCtx)
		if n != 1 || !errors.Is(err, context.Canceled) {
			t.Fatalf("DeliverDue = %d, %v; want 1, context.Canceled", n, err)
		}
		if m := e.getMail(t, 1); m.SentAt.IsZero() {
			t.Fatalf("message accepted during shutdown not recorded as sent: %+v", m)
		}
		if e.backlog(t) != 1 || len(srv.Messages()) != 1 {
			t.Fatalf("backlog %d, received %d; want 1, 1", e.backlog(t), len(srv.Messages()))
		}
	})
}

// TestRunDeliversWhenNudged: Run delivers without waiting for its poll
// when nudged, and returns nil when its context ends.
func TestRunDeliversWhenNudged(t *testing.T) {
	e := newEnv(t, storetest.SQLite().Open(t))
	srv := mailtest.Start(t, "127.0.0.1:0", mailtest.Options{})
	w := e.worker(t, srv.Addr(), nil)
	w.PollInterval = time.Hour
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	// Whatever the first pass saw, the second message can only go out
	// through a nudge: the next poll is an hour away.
	for i := 1; i <= 2; i++ {
		e.send(t, user(i))
		w.Nudge()
		srv.Wait(t, i, 10*time.Second)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if got := recipients(srv.Messages()); len(got) != 2 || got[user(1)] != 1 || got[user(2)] != 1 {
		t.Fatalf("received %v", got)
	}
}

// TestRunRefusesBadConfig: a worker that cannot work says so at once.
func TestRunRefusesBadConfig(t *testing.T) {
	e := newEnv(t, storetest.SQLite().Open(t))
	w := e.worker(t, "127.0.0.1:25", func(c *mail.SMTPConfig) { c.From = "" })
	if err := w.Run(ctx); err == nil || !strings.Contains(err.Error(), "From") {
		t.Fatalf("Run without a sender = %v", err)
	}
	w = e.worker(t, "127.0.0.1:25", nil)
	w.Retry.Base = time.Millisecond
	if _, err := w.DeliverDue(ctx); err == nil {
		t.Fatal("DeliverDue accepted a 1 ms retry base")
	}
	w = e.worker(t, "127.0.0.1:25", nil)
	w.Lease = time.Second
	if _, err := w.DeliverDue(ctx); err == nil {
		t.Fatal("DeliverDue accepted a lease too short to record an outcome in")
	}
}

func TestRetryDelay(t *testing.T) {
	for attempts, want := range map[int]time.Duration{
		0: 30 * time.Second, 1: 30 * time.Second, 2: time.Minute, 3: 2 * time.Minute, 7: 32 * time.Minute,
		8: time.Hour, 9: time.Hour, 1000: time.Hour,
	} {
		if got := mail.DefaultRetry.Delay(attempts); got != want {
			t.Errorf("Delay(%d) = %v, want %v", attempts, got, want)
		}
	}
}
