package main

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twofold-id/twofold/mail/mailtest"
	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
)

// The owner-initiated reset under concurrency and failure: owners racing
// to reset one member, members racing to complete one link, and a reset
// while the SMTP server is down.

// together runs each of fns at once, released by one signal, and returns
// their results in order.
func together(fns ...func() page) []page {
	results := make([]page, len(fns))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(func() {
			<-start
			results[i] = fn()
		})
	}
	close(start)
	wg.Wait()
	return results
}

// TestConcurrentOwnerResets: two owners reset the same member at the same
// moment, three times over. Each reset either goes through or is refused
// cleanly, never a 5xx; afterwards exactly one of the emailed links works,
// the newest, and every other says a newer one was sent.
func TestConcurrentOwnerResets(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, backend storetest.Backend) {
		s := newTestServer(t, backend, nil)
		sc := s.resetScene(nil)
		second := s.createUser("second-owner@example.com")
		s.join(sc.org, second, store.RoleOwner)
		secondB := s.newBrowser()
		secondB.enrollInSettings(second)
		ctx := context.Background()

		path := "/settings/members/" + sc.member.ID + "/reset"
		done := 0
		for round := range 3 {
			var fns []func() page
			for _, b := range []*browser{sc.ownerB, secondB} {
				fns = append(fns, func() page { return b.request(http.MethodPost, path, url1("org", sc.org), nil) })
			}
			for i, p := range together(fns...) {
				switch {
				case p.status == http.StatusOK && strings.Contains(p.body, "was reset"):
					done++
				case p.status >= 400 && p.status < 500:
					t.Logf("round %d, owner %d: refused with %d", round+1, i+1, p.status)
				default:
					t.Fatalf("round %d, owner %d: %d at %s\n%.1500s", round+1, i+1, p.status, p.url, p.body)
				}
			}
		}
		if done == 0 {
			t.Fatal("no concurrent reset went through")
		}

		mails := s.resetMails(sc.member)
		if len(mails) != done || len(s.auditOf(sc.member, "reset.initiated")) != done {
			t.Fatalf("%d resets went through but %d emails and %d reset.initiated events", done, len(mails), len(s.auditOf(sc.member, "reset.initiated")))
		}
		latest, err := s.db.LatestResetToken(ctx, sc.member.ID)
		if err != nil {
			t.Fatal(err)
		}
		live := 0
		for _, m := range mails {
			link := resetLinkInMail.FindString(m.Text)
			p := s.newBrowser().get(link)
			switch {
			case p.status == http.StatusOK && strings.Contains(p.body, "Complete reset"):
				live++
				if m.ID != latest.MailID {
					t.Errorf("the live link is in email %d, but the newest link's email is %d", m.ID, latest.MailID)
				}
			case p.status == http.StatusBadRequest && strings.Contains(p.body, "A newer reset link was sent"):
			default:
				t.Errorf("link of email %d: %d\n%.800s", m.ID, p.status, p.body)
			}
		}
		if live != 1 {
			t.Fatalf("%d live links after %d concurrent resets, want exactly 1", live, done)
		}
		if !latest.UsedAt.IsZero() || !latest.SupersededAt.IsZero() {
			t.Fatalf("newest link = %+v, want live", latest)
		}
		if _, err := s.db.GetTOTPCredential(ctx, sc.member.ID); err == nil {
			t.Fatal("the member's authenticator app survived")
		}
		if u, _ := s.db.GetUser(ctx, sc.member.ID); u.MFAState != store.MFAResetPending {
			t.Fatalf("member's state = %q", u.MFAState)
		}
	})
}

// TestConcurrentLinkCompletion: ten browsers, each on the link's
// confirmation page, confirm at once: exactly one completes the reset and
// the others are told the link was already used, never a 5xx.
func TestConcurrentLinkCompletion(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, backend storetest.Backend) {
		s := newTestServer(t, backend, nil)
		sc := s.resetScene(nil)
		link := strings.TrimPrefix(sc.reset(), s.issuer)
		var fns []func() page
		for range 10 {
			b := s.newBrowser()
			if p := b.get(s.issuer + link); !strings.Contains(p.body, "Complete reset") {
				t.Fatalf("link page: %d\n%.800s", p.status, p.body)
			}
			fns = append(fns, func() page { return b.request(http.MethodPost, link, nil, nil) })
		}
		completed := 0
		for i, p := range together(fns...) {
			switch {
			case p.status == http.StatusOK && strings.Contains(p.body, "Reset complete"):
				completed++
			case p.status == http.StatusBadRequest && strings.Contains(p.body, "This reset link was already used"):
			default:
				t.Errorf("confirmation %d: %d\n%.800s", i+1, p.status, p.body)
			}
		}
		if completed != 1 {
			t.Fatalf("%d of 10 concurrent confirmations completed the reset, want 1", completed)
		}
		ctx := context.Background()
		if u, _ := s.db.GetUser(ctx, sc.member.ID); u.MFAState != store.MFAMustEnroll {
			t.Fatalf("member's state = %q, want must enroll", u.MFAState)
		}
		if tok, _ := s.db.LatestResetToken(ctx, sc.member.ID); tok.UsedAt.IsZero() {
			t.Fatalf("link not marked used: %+v", tok)
		}
		if n := len(s.auditOf(sc.member, "reset.link_used")); n != 1 {
			t.Fatalf("%d reset.link_used events, want 1", n)
		}
	})
}

// waitMail polls the outbox until message id is as ok wants it.
func (s *testServer) waitMail(id int64, what string, ok func(store.Mail) bool) store.Mail {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		m, err := s.db.GetMail(context.Background(), id)
		if err == nil && ok(m) {
			return m
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("outbox message %d never %s: attempts %d, sent %v, error %q (%v)", id, what, m.Attempts, m.SentAt, m.LastError, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestResetWhileSMTPDown: the SMTP server is down when an owner resets a
// member. The reset commits all the same; the email's first attempt fails
// and is rescheduled 30 s later; once the server is up and that time has
// come, the worker delivers the email, exactly once, with the live link.
func TestResetWhileSMTPDown(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, backend storetest.Backend) {
		addr := mailtest.FreeAddr(t) // nothing listens here yet
		clock := movingClock()
		s := newTestServerWith(t, backend, testOptions{now: clock.now, mutate: func(c *Config) {
			c.SMTPURL, c.MailFrom = "smtp://"+addr, "twofold <no-reply@id.test>"
		}})
		ctx := context.Background()
		sc := s.resetScene(clock)
		link := sc.reset()
		if u, _ := s.db.GetUser(ctx, sc.member.ID); u.MFAState != store.MFAResetPending {
			t.Fatalf("member's state = %q, want reset pending although mail is down", u.MFAState)
		}
		if _, err := s.db.GetTOTPCredential(ctx, sc.member.ID); err == nil {
			t.Fatal("the member's authenticator app survived the reset")
		}
		tok, err := s.db.LatestResetToken(ctx, sc.member.ID)
		if err != nil {
			t.Fatal(err)
		}
		failed := s.waitMail(tok.MailID, "failed a first attempt", func(m store.Mail) bool { return m.Attempts == 1 && m.LastError != "" })
		if !failed.SentAt.IsZero() || !failed.FailedAt.IsZero() ||
			failed.NextAttemptAt.Before(clock.now().Add(20*time.Second)) || failed.NextAttemptAt.After(clock.now().Add(30*time.Second)) {
			t.Fatalf("after the failed attempt: sent %v, given up %v, next attempt in %v; want a retry in 30 s",
				failed.SentAt, failed.FailedAt, failed.NextAttemptAt.Sub(clock.now()))
		}

		smtp := mailtest.Start(t, addr, mailtest.Options{})
		clock.advance(31 * time.Second)
		// The two "2FA is on" emails of the scene were held up too.
		msgs := smtp.Wait(t, 3, 15*time.Second)
		sent := s.waitMail(tok.MailID, "sent", func(m store.Mail) bool { return !m.SentAt.IsZero() })
		if sent.Attempts != 2 {
			t.Fatalf("reset email sent on attempt %d, want 2", sent.Attempts)
		}
		// Once sent, never again: a worker pass an hour later sends nothing.
		clock.advance(time.Hour)
		if n, err := s.srv.worker.DeliverDue(ctx); n != 0 || err != nil {
			t.Fatalf("a later pass sent %d more (%v)", n, err)
		}
		var resets []mailtest.Message
		for _, m := range smtp.Messages() {
			if m.Subject == resetSubject {
				resets = append(resets, m)
			}
		}
		if len(msgs) != 3 || len(smtp.Messages()) != 3 || len(resets) != 1 || resets[0].To[0] != sc.member.Email {
			t.Fatalf("%d messages delivered, %d of them reset emails; want 3 and exactly 1", len(smtp.Messages()), len(resets))
		}
		if got := resetLink(t, resets[0]); got != link {
			t.Fatalf("delivered link %q, want %q", got, link)
		}
		if p := s.newBrowser().get(link); p.status != http.StatusOK || !strings.Contains(p.body, "Complete reset") {
			t.Fatalf("the delivered link: %d\n%.800s", p.status, p.body)
		}
	})
}
