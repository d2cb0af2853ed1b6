package main

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/twofold-id/twofold/mail/mailtest"
	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
)

// withSMTP points the server's mail at a real SMTP server in the test.
func withSMTP(smtp *mailtest.Server) func(*Config) {
	return func(c *Config) { c.SMTPURL, c.MailFrom = smtp.URL(), "twofold <no-reply@id.test>" }
}

// TestSecondFactorSignIn: enroll TOTP in Security Settings, then sign in
// with TOTP and with a backup code through the real relying party; the
// same backup code is refused again; regenerated codes replace the old
// ones; every change is mailed through a real SMTP server.
func TestSecondFactorSignIn(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, backend storetest.Backend) {
		smtp := mailtest.Start(t, "127.0.0.1:0", mailtest.Options{})
		s := newTestServer(t, backend, withSMTP(smtp))
		u := s.createUser("two@example.com")
		rp := s.newRP(store.Client{RequirePKCE: true})

		settings := s.newBrowser()
		if p := settings.signInToSettings(u); !strings.Contains(p.body, "Configure 2FA") {
			t.Fatalf("security settings before enrolling:\n%.2000s", p.body)
		}
		app, codes := settings.enrollInSettings(u)
		if p := settings.get(s.issuer + "/settings/security"); !strings.Contains(p.body, "10 of 10 left") {
			t.Fatalf("security settings after enrolling:\n%.2000s", p.body)
		}
		if m := smtp.Wait(t, 1, 10*time.Second)[0]; m.To[0] != u.Email || m.Subject != "Two-factor authentication is on" ||
			!strings.Contains(m.Text, "now on") || !strings.Contains(m.HTML, "now on") {
			t.Fatalf("enrollment mail = %+v", m)
		}

		// Sign-in with the authenticator app.
		b := s.newBrowser()
		ar := rp.authRequest()
		p := b.login(b.get(ar.url), u.Email, u.Password)
		p = b.consent(b.secondFactor(p, app.next()), "allow")
		in := rp.exchange(rp.code(p, ar), ar)
		if !slices.Equal(in.claims.AMR, []string{"pwd", "otp", "mfa"}) || in.claims.ACR != "urn:twofold:acr:mfa" {
			t.Fatalf("TOTP sign-in claims = %+v", in.claims)
		}

		// Sign-in with a backup code, typed loosely.
		b2 := s.newBrowser()
		ar = rp.authRequest()
		p = b2.login(b2.get(ar.url), u.Email, u.Password)
		p = b2.secondFactor(p, strings.ToUpper(strings.ReplaceAll(codes[0], "-", " ")))
		in = rp.exchange(rp.code(p, ar), ar)
		if !slices.Equal(in.claims.AMR, []string{"pwd", "otp", "mfa"}) {
			t.Fatalf("backup-code sign-in claims = %+v", in.claims)
		}
		logins, _ := s.db.ListAudit(context.Background(), store.AuditFilter{TargetID: u.ID, Kind: "login.succeeded"})
		if len(logins) == 0 || logins[0].Details["method"] != "password+backup_code" {
			t.Fatalf("the backup-code sign-in is not told apart in the audit log: %+v", logins)
		}
		if m := smtp.Wait(t, 2, 10*time.Second)[1]; m.Subject != "A backup code was used to sign in" || !strings.Contains(m.Text, "9 backup codes left") {
			t.Fatalf("backup code mail = %+v", m)
		}

		// The same code again: refused with the generic message.
		b3 := s.newBrowser()
		p = b3.secondFactor(b3.login(b3.get(rp.authRequest().url), u.Email, u.Password), codes[0])
		if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "That code didn&#39;t work") {
			t.Fatalf("reused backup code: %d\n%.1000s", p.status, p.body)
		}

		// Regenerate: old codes die, new ones work.
		fresh := backupCodes(t, settings.post("/settings/security/backup-codes", nil))
		if p := b3.secondFactor(p, codes[1]); p.status != http.StatusUnauthorized {
			t.Fatalf("old backup code after regeneration: %d", p.status)
		}
		ar = rp.authRequest()
		p = b3.get(ar.url) // the flow above is still waiting for its second factor; start over
		p = b3.secondFactor(b3.login(p, u.Email, u.Password), fresh[3])
		rp.code(p, ar)
		if m := smtp.Wait(t, 3, 10*time.Second)[2]; m.Subject != "New backup codes for your account" {
			t.Fatalf("regeneration mail = %+v", m)
		}
	})
}

// TestSecondFactorThrottle: five wrong codes end the flow; the user is then
// throttled, so even the right code in a new flow gets the same message
// until the block passes.
func TestSecondFactorThrottle(t *testing.T) {
	s := newTestServer(t, storetest.SQLite(), nil)
	u := s.createUser("slow2@example.com")
	app, _ := s.newBrowser().enrollInSettings(u)
	rp := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true})

	b := s.newBrowser()
	p := b.login(b.get(rp.authRequest().url), u.Email, u.Password)
	twoFA := p
	for i := range 5 {
		p = b.secondFactor(twoFA, "000000")
		if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "That code didn&#39;t work") {
			t.Fatalf("wrong code %d: %d", i+1, p.status)
		}
	}
	if p = b.secondFactor(twoFA, "000000"); p.status != http.StatusTooManyRequests || !strings.Contains(p.body, "too many wrong codes") {
		t.Fatalf("sixth attempt in the flow: %d\n%.800s", p.status, p.body)
	}
	b2 := s.newBrowser()
	ar := rp.authRequest()
	code := app.next() // refused unseen while throttled, so still fresh afterwards
	p = b2.secondFactor(b2.login(b2.get(ar.url), u.Email, u.Password), code)
	if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "That code didn&#39;t work") {
		t.Fatalf("right code while the user is throttled: %d", p.status)
	}
	throttled, _ := s.db.ListAudit(context.Background(), store.AuditFilter{TargetID: u.ID, Kind: "mfa.throttled"})
	if len(throttled) == 0 {
		t.Fatal("no mfa.throttled audit event")
	}
	// When the block has passed (here: lifted), the right code works.
	if err := s.db.ResetRateLimit(context.Background(), "mfa-user:"+u.ID); err != nil {
		t.Fatal(err)
	}
	rp.code(b2.secondFactor(p, code), ar)
}

// TestPasswordAloneGetsNothing: between the password and the second factor
// there is no session: no settings page, no consent, no code.
func TestPasswordAloneGetsNothing(t *testing.T) {
	s := newTestServer(t, storetest.SQLite(), nil)
	u := s.createUser("half@example.com")
	s.newBrowser().enrollInSettings(u)
	rp := s.newRP(store.Client{RequirePKCE: true})
	b := s.newBrowser()
	p := b.login(b.get(rp.authRequest().url), u.Email, u.Password)
	flow := p.hidden().Get("flow")
	if !strings.Contains(p.url.Path, "/login/2fa") || flow == "" {
		t.Fatalf("expected the second-factor step, got %s", p.url)
	}
	if p := b.get(s.issuer + "/settings/security"); !strings.Contains(p.body, `name="password"`) {
		t.Fatalf("settings reachable with the password alone: %d %s", p.status, p.url)
	}
	if p := b.get(s.issuer + "/consent?flow=" + flow); !strings.Contains(p.url.Path, "/login/2fa") {
		t.Fatalf("consent reachable with the password alone: %s", p.url)
	}
	// A forged consent POST does not skip the second factor either.
	if p := b.post("/consent", url.Values{"flow": {flow}, "decision": {"allow"}}); !strings.Contains(p.url.Path, "/login/2fa") {
		t.Fatalf("forged consent: %d %s", p.status, p.url)
	}
	if p := b.get(s.issuer + "/oauth2/auth?flow=" + flow); p.status != http.StatusBadRequest || p.location != "" {
		t.Fatalf("a code with the password alone: %d %q", p.status, p.location)
	}
	// The dispatcher, which finishes flows itself, sends it to the second
	// factor too.
	if p := b.get(s.issuer + "/login/continue?flow=" + flow); p.location != "" || !strings.Contains(p.url.Path, "/login/2fa") {
		t.Fatalf("the dispatcher with the password alone: %d %s %q", p.status, p.url, p.location)
	}
	ar := rp.authRequest(oauth2.SetAuthURLParam("prompt", "none"))
	if q := rp.callback(b.get(ar.url), ar); q.Get("error") != "login_required" {
		t.Fatalf("prompt=none after the password alone: %v", q)
	}
}

// TestConcurrentBackupCodeSignIns: twenty sign-ins, each at its second-
// factor step, submit the same backup code at once: exactly one gets
// through.
func TestConcurrentBackupCodeSignIns(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, backend storetest.Backend) {
		s := newTestServer(t, backend, nil)
		u := s.createUser("crowd@example.com")
		_, codes := s.newBrowser().enrollInSettings(u)
		rp := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true})
		type attempt struct {
			b  *browser
			p  page
			ar authRequest
		}
		attempts := make([]attempt, 20)
		for i := range attempts {
			b := s.newBrowser()
			ar := rp.authRequest()
			attempts[i] = attempt{b, b.login(b.get(ar.url), u.Email, u.Password), ar}
		}
		results := make([]page, len(attempts))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, a := range attempts {
			wg.Go(func() {
				<-start
				results[i] = a.b.secondFactor(a.p, codes[7])
			})
		}
		close(start)
		wg.Wait()
		won := 0
		for _, p := range results {
			switch {
			case p.status == http.StatusSeeOther || strings.HasPrefix(p.location, rp.conf.RedirectURL) || strings.Contains(p.url.Path, "/oauth2/auth"):
				won++
			case p.status != http.StatusUnauthorized:
				t.Fatalf("unexpected answer %d at %s", p.status, p.url)
			}
		}
		if won != 1 {
			t.Fatalf("%d of 20 concurrent sign-ins with one backup code got through, want 1", won)
		}
		if n, _ := s.db.CountBackupCodes(context.Background(), u.ID); n != 9 {
			t.Fatalf("backup codes left = %d, want 9", n)
		}
	})
}

// TestLowBackupCodesWarning: signing in with one of the last three backup
// codes says so and links to regenerate.
func TestLowBackupCodesWarning(t *testing.T) {
	s := newTestServer(t, storetest.SQLite(), nil)
	u := s.createUser("low@example.com")
	_, codes := s.newBrowser().enrollInSettings(u)
	rp := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true})
	for i, code := range codes[:7] {
		b := s.newBrowser()
		ar := rp.authRequest()
		p := b.secondFactor(b.login(b.get(ar.url), u.Email, u.Password), code)
		if i < 6 {
			rp.code(p, ar) // straight through while more than three are left
			continue
		}
		if !strings.Contains(p.body, "You have 3 backup codes left") || !strings.Contains(p.body, `href="/settings/security"`) {
			t.Fatalf("no warning with 3 codes left: %d\n%.1500s", p.status, p.body)
		}
		next := p.body[strings.Index(p.body, "/login/continue?flow="):]
		rp.code(b.get(s.issuer+next[:strings.Index(next, `"`)]), ar)
	}
}
