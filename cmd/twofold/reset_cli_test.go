package main

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twofold-id/twofold/mail/mailtest"
	"github.com/twofold-id/twofold/mfa"
	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
)

// TestCLIReset2FA: `twofold users reset-2fa`, run against the database of
// a running server, resets the member as an owner would, recorded as the
// operator's doing; it prints the link, which works on the server, and the
// server delivers the email. Mistakes fail without touching anyone.
func TestCLIReset2FA(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, backend storetest.Backend) {
		smtp := mailtest.Start(t, "127.0.0.1:0", mailtest.Options{})
		s := newTestServer(t, backend, withSMTP(smtp))
		ctx := context.Background()
		sc := s.resetScene(nil)
		smtp.Wait(t, 2, 10*time.Second) // the scene's two "2FA is on" emails
		c := &cli{t: t, url: s.a.cfg.DatabaseURL, vars: map[string]string{
			"TWOFOLD_DATABASE_URL": s.a.cfg.DatabaseURL,
			"TWOFOLD_SECRET_KEY":   s.a.cfg.SecretKey,
			"TWOFOLD_ISSUER":       s.issuer,
			"TWOFOLD_DATA_DIR":     t.TempDir(),
		}}

		refusals := []struct {
			name  string
			args  []string
			usage bool
			says  string
		}{
			{"missing --email", []string{"users", "reset-2fa"}, true, ""},
			{"empty --email", []string{"users", "reset-2fa", "--email", ""}, true, ""},
			{"not an email", []string{"users", "reset-2fa", "--email", "member"}, true, ""},
			{"extra argument", []string{"users", "reset-2fa", "--email", sc.member.Email, "now"}, true, ""},
			{"unknown email", []string{"users", "reset-2fa", "--email", "Nobody@Example.com"}, false, "no user with email nobody@example.com"},
		}
		for _, r := range refusals {
			err := c.fails("", r.args...)
			if r.usage {
				assertUsage(t, err)
			} else if errors.Is(err, errUsage) || !strings.Contains(err.Error(), r.says) {
				t.Errorf("%s: error = %v, want %q", r.name, err, r.says)
			}
		}
		s.assertNotReset(sc.member)
		s.assertNotReset(sc.owner)

		out := c.ok("", "users", "reset-2fa", "--email", strings.ToUpper(sc.member.Email))
		link, _ := out["link"].(string)
		expires, err := time.Parse(time.RFC3339, stringOf(out["link_expires_at"]))
		if out["user_id"] != sc.member.ID || out["mfa"] != "reset_pending" || !strings.HasPrefix(link, s.issuer+"/reset/") ||
			err != nil || expires.Sub(time.Now().Add(24*time.Hour)).Abs() > time.Minute {
			t.Fatalf("reset-2fa printed %v", out)
		}
		if u, _ := s.db.GetUser(ctx, sc.member.ID); u.MFAState != store.MFAResetPending {
			t.Fatalf("member's state = %q", u.MFAState)
		}
		if _, err := s.db.GetTOTPCredential(ctx, sc.member.ID); err == nil {
			t.Fatal("the member's authenticator app survived")
		}
		if p := sc.memberB.get(s.issuer + "/settings/security"); !strings.Contains(p.body, `name="password"`) {
			t.Fatal("the member's session survived")
		}
		evs := s.auditOf(sc.member, "reset.initiated")
		if len(evs) != 1 || evs[0].ActorID != mfa.Operator || evs[0].OrgID != sc.org || evs[0].ClientAddr != "command line" {
			t.Fatalf("reset audit = %+v", evs)
		}

		// The running server delivers the email the command queued.
		m := smtp.Wait(t, 3, 15*time.Second)[2]
		if m.To[0] != sc.member.Email || m.Subject != resetSubject || resetLink(t, m) != link || !strings.Contains(m.Text, "an administrator of") {
			t.Fatalf("reset email = %q to %v:\n%s", m.Subject, m.To, m.Text)
		}
		// The printed link works on the server.
		b := s.newBrowser()
		if p := b.get(link); p.status != http.StatusOK || !strings.Contains(p.body, sc.member.Email) {
			t.Fatalf("printed link: %d\n%.800s", p.status, p.body)
		}
		if p := b.post(link, nil); !strings.Contains(p.body, "Reset complete") {
			t.Fatalf("completing with the printed link: %d\n%.800s", p.status, p.body)
		}
		if u, _ := s.db.GetUser(ctx, sc.member.ID); u.MFAState != store.MFAMustEnroll {
			t.Fatalf("member's state after the link = %q", u.MFAState)
		}
		s.assertNotReset(sc.owner)
	})
}

func stringOf(v any) string { s, _ := v.(string); return s }
