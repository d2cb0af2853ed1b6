package main

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
)

// TestOrganizationRequiresEnrollment: a member of an organization that
// requires 2FA, with no factor, enrolls inside the sign-in flow before the
// application gets a code.
func TestOrganizationRequiresEnrollment(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, backend storetest.Backend) {
		s := newTestServer(t, backend, nil)
		u := s.createUser("must@example.com")
		ctx := context.Background()
		if err := s.db.CreateOrganization(ctx, store.Organization{ID: "o", Name: "Strict", Require2FA: true, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if err := s.db.PutMembership(ctx, store.Membership{OrgID: "o", UserID: u.ID, Role: store.RoleMember, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		rp := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true})
		b := s.newBrowser()
		ar := rp.authRequest()
		p := b.login(b.get(ar.url), u.Email, u.Password)
		if !strings.Contains(p.url.Path, "/login/enroll") || !strings.Contains(p.body, "needs two-factor authentication") {
			t.Fatalf("expected enrollment inside the flow, got %s", p.url)
		}
		app := enrollSecret(t, p)
		// Reloading shows the same secret (an app that scanned it keeps working).
		if again := enrollSecret(t, b.get(p.url.String())); again.secret != app.secret {
			t.Fatal("reloading the enrollment page changed the secret")
		}
		// A wrong code keeps the user on the page with the same secret.
		form := p.hidden()
		form.Set("code", "000000")
		if wrong := b.post("/login/enroll", form); wrong.status != http.StatusUnauthorized || enrollSecret(t, wrong).secret != app.secret {
			t.Fatalf("wrong enrollment code: %d", wrong.status)
		}
		form.Set("code", app.next())
		p = b.post("/login/enroll", form)
		codes := backupCodes(t, p)
		if !strings.Contains(p.body, `download="backup-codes.txt"`) || !strings.Contains(p.body, "shown only now") {
			t.Fatalf("backup codes page lacks the download or the warning")
		}
		var next string
		for _, l := range []string{"/login/continue?flow="} {
			if i := strings.Index(p.body, l); i >= 0 {
				next = p.body[i : i+len(l)+26]
			}
		}
		in := rp.exchange(rp.code(b.get(s.issuer+next), ar), ar)
		if !slices.Equal(in.claims.AMR, []string{"pwd", "otp", "mfa"}) {
			t.Fatalf("claims after forced enrollment = %+v", in.claims)
		}
		// From now on the second factor is asked every time.
		b2 := s.newBrowser()
		ar = rp.authRequest()
		p = b2.login(b2.get(ar.url), u.Email, u.Password)
		rp.code(b2.secondFactor(p, codes[0]), ar)
	})
}

// TestStepUp: a browser signed in with the password alone is stepped up
// (here, to enrollment, without asking for the password again) when a
// client requires 2FA or a request asks for it with acr_values.
func TestStepUp(t *testing.T) {
	s := newTestServer(t, storetest.SQLite(), nil)
	u := s.createUser("step@example.com")
	plain := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true})
	strict := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true, Require2FA: true})
	b := s.newBrowser()
	first := plain.signIn(b, u)
	if first.claims.ACR != "urn:twofold:acr:pwd" {
		t.Fatalf("password-only acr = %s", first.claims.ACR)
	}

	t.Run("prompt=none cannot step up", func(t *testing.T) {
		ar := strict.authRequest(oauth2.SetAuthURLParam("prompt", "none"))
		if q := strict.callback(b.get(ar.url), ar); q.Get("error") != "login_required" {
			t.Fatalf("callback = %v", q)
		}
	})
	t.Run("acr_values asks for a second factor", func(t *testing.T) {
		ar := plain.authRequest(oauth2.SetAuthURLParam("acr_values", "urn:twofold:acr:mfa"))
		if p := b.get(ar.url); !strings.Contains(p.url.Path, "/login/enroll") {
			t.Fatalf("acr_values=mfa did not step up: %s", p.url)
		}
	})
	ar := strict.authRequest()
	p := b.get(ar.url)
	if !strings.Contains(p.url.Path, "/login/enroll") {
		t.Fatalf("client requiring 2FA did not step up: %s", p.url)
	}
	app := enrollSecret(t, p)
	form := p.hidden()
	form.Set("code", app.next())
	b.post("/login/enroll", form)
	p = b.get(s.issuer + "/login/continue?flow=" + form.Get("flow"))
	in := strict.exchange(strict.code(p, ar), ar)
	if in.claims.ACR != "urn:twofold:acr:mfa" || in.claims.AuthTime < first.claims.AuthTime {
		t.Fatalf("stepped-up claims = %+v", in.claims)
	}
}

// TestSettingsNeedRecentSignIn: changes in Security Settings ask for the
// password and code again after ten minutes.
func TestSettingsNeedRecentSignIn(t *testing.T) {
	clock := time.Now()
	now := func() time.Time { return clock }
	s := newTestServerWith(t, storetest.SQLite(), testOptions{now: now})
	u := s.createUser("recent@example.com")
	b := s.newBrowser()
	app, _ := b.enrollInSettings(u)
	app.now = now

	clock = clock.Add(11 * time.Minute)
	p := b.post("/settings/security/backup-codes", nil)
	if !strings.Contains(p.body, `name="password"`) || !strings.Contains(p.body, "confirm it&#39;s you") {
		t.Fatalf("a stale sign-in regenerated codes: %d %s\n%.3000s", p.status, p.url, p.body)
	}
	p = b.secondFactor(b.login(p, u.Email, u.Password), app.next())
	if !strings.Contains(p.url.Path, "/settings/security") || !strings.Contains(p.body, "Regenerate backup codes") {
		t.Fatalf("after re-authenticating: %s", p.url)
	}
	backupCodes(t, b.post("/settings/security/backup-codes", nil))
}

// TestTurnOff: turning 2FA off is refused (and changes nothing) while an
// organization requires it, and works otherwise.
func TestTurnOff(t *testing.T) {
	s := newTestServer(t, storetest.SQLite(), nil)
	u := s.createUser("off@example.com")
	b := s.newBrowser()
	_, codes := b.enrollInSettings(u)
	ctx := context.Background()
	s.db.CreateOrganization(ctx, store.Organization{ID: "o", Name: "Strict", Require2FA: true, CreatedAt: time.Now()})
	s.db.PutMembership(ctx, store.Membership{OrgID: "o", UserID: u.ID, Role: store.RoleMember, CreatedAt: time.Now()})

	if p := b.get(s.issuer + "/settings/security"); strings.Contains(p.body, "Turn off 2FA") {
		t.Fatal("Turn off is offered although an organization requires 2FA")
	}
	if p := b.post("/settings/security/disable", nil); p.status != http.StatusConflict {
		t.Fatalf("forged turn-off: %d", p.status)
	}
	if n, _ := s.db.CountBackupCodes(ctx, u.ID); n != 10 {
		t.Fatalf("a refused turn-off changed the codes: %d left", n)
	}
	s.db.SetOrganizationRequire2FA(ctx, "o", false)
	p := b.post("/settings/security/disable", nil)
	if !strings.Contains(p.body, "Two-factor authentication is off") {
		t.Fatalf("turn off: %d\n%.800s", p.status, p.body)
	}
	rp := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true})
	b2 := s.newBrowser()
	in := rp.signIn(b2, u) // the password alone again
	if in.claims.ACR != "urn:twofold:acr:pwd" {
		t.Fatalf("claims = %+v", in.claims)
	}
	if n, _ := s.db.CountBackupCodes(ctx, u.ID); n != 0 || codes == nil {
		t.Fatalf("backup codes survived turning off: %d", n)
	}
}
