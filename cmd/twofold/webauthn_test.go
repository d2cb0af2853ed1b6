package main

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/descope/virtualwebauthn"

	"github.com/twofold-id/twofold/session"
	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
)

// amrHWK is the amr of a sign-in with the password and a hardware key.
var amrHWK = []string{"pwd", "hwk", "mfa"}

// TestSecurityKeySignIn: a member adds a security key in Security
// Settings and gets backup codes; in a new browser they sign in to an
// application through the real relying party with the password and the
// key, and the ID token says amr ["pwd","hwk","mfa"]. An answer from
// another origin is refused on the way; a used answer does not sign
// anyone in again; the settings page shows when the key was last used.
func TestSecurityKeySignIn(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, backend storetest.Backend) {
		s := newKeyServer(t, backend, testOptions{})
		u := s.createUser("key@example.com")
		rp := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true})

		b := s.newBrowser()
		if p := b.signInToSettings(u); !strings.Contains(p.body, `href="/settings/security/keys/new"`) {
			t.Fatalf("no way to add a key in settings:\n%.3000s", p.body)
		}
		key := newSoftKey(t)
		backupCodes(t, b.registerKey(s, key, "Blue YubiKey"))
		p := b.get(s.issuer + "/settings/security")
		if !strings.Contains(p.body, "<strong>Blue YubiKey</strong>") || !strings.Contains(p.body, "security key · added") ||
			!strings.Contains(p.body, "never used") || !strings.Contains(p.body, "10 of 10 left") {
			t.Fatalf("settings after adding a key:\n%.4000s", p.body)
		}

		// Sign out (a new browser) and sign in to the application.
		nb := s.newBrowser()
		ar := rp.authRequest()
		p = nb.login(nb.get(ar.url), u.Email, u.Password)
		if p.url.Path != "/login/2fa" || !strings.Contains(p.body, "Use your security key") || !strings.Contains(p.body, `autocomplete="one-time-code"`) {
			t.Fatalf("expected the second-factor page with the key and the code field, got %s:\n%.3000s", p.url, p.body)
		}
		evil := virtualwebauthn.RelyingParty{ID: "localhost", Origin: "http://evil.example"}
		p = nb.useKey(p, key, evil)
		if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "was not accepted") || p.location != "" {
			t.Fatalf("an answer from another origin: %d at %s (location %q)", p.status, p.url, p.location)
		}
		form := p.keyForm(t).fields
		used := key.get(s.keyOrigin(), p.keyForm(t).options)
		form.Set("response", used)
		in := rp.exchange(rp.code(nb.post("/login/2fa/key", form), ar), ar)
		if !slices.Equal(in.claims.AMR, amrHWK) || in.claims.ACR != session.ACRMultiFactor || in.claims.Sub != u.ID {
			t.Fatalf("claims = %+v", in.claims)
		}

		// The used answer, replayed in another sign-in, with its own
		// ceremony or the new one, signs nobody in.
		ob := s.newBrowser()
		ar2 := rp.authRequest()
		p = ob.login(ob.get(ar2.url), u.Email, u.Password)
		other := p.keyForm(t).fields
		for _, ceremony := range []string{form.Get("ceremony"), other.Get("ceremony")} {
			replay := url.Values{"flow": {other.Get("flow")}, "ceremony": {ceremony}, "response": {used}}
			if p := ob.post("/login/2fa/key", replay); p.status != http.StatusUnauthorized || p.location != "" {
				t.Fatalf("replayed answer: %d at %s (location %q)", p.status, p.url, p.location)
			}
		}

		p = b.get(s.issuer + "/settings/security")
		if !strings.Contains(p.body, "last used ") || strings.Contains(p.body, "never used") {
			t.Fatalf("settings after signing in with the key:\n%.4000s", p.body)
		}
		rows, _ := s.db.ListWebAuthnCredentials(context.Background(), u.ID)
		if len(rows) != 1 || rows[0].SignCount != key.cred.Counter || rows[0].SignCount != 2 {
			t.Fatalf("stored keys = %+v (key counter %d)", rows, key.cred.Counter)
		}
	})
}

// TestSecurityKeyForcedEnrollment: a member of an organization that
// requires 2FA enrolls a security key inside the sign-in flow, gets
// backup codes, continues to the application (amr hwk), and from then on
// signs in with the key.
func TestSecurityKeyForcedEnrollment(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, backend storetest.Backend) {
		s := newKeyServer(t, backend, testOptions{})
		owner, member := s.createUser("owner@example.com"), s.createUser("member@example.com")
		org := s.org("Strict", owner, member)
		if err := s.db.SetOrganizationRequire2FA(context.Background(), org, true); err != nil {
			t.Fatal(err)
		}
		rp := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true})
		key := newSoftKey(t)

		b := s.newBrowser()
		ar := rp.authRequest()
		p := b.login(b.get(ar.url), member.Email, member.Password)
		f := p.keyForm(t)
		if p.url.Path != "/login/enroll" || f.mode != "create" || f.action != "/login/enroll/key" || !strings.Contains(p.body, "Use a security key") {
			t.Fatalf("expected enrollment offering a key, got %s: %+v", p.url, f)
		}
		// No way around enrollment: the application gets nothing yet.
		if p := b.get(s.issuer + "/login/continue?flow=" + f.fields.Get("flow")); p.location != "" {
			t.Fatalf("continued before enrolling: %s", p.location)
		}
		f.fields.Set("response", key.create(s.keyOrigin(), f.options))
		f.fields.Set("name", "Work key")
		p = b.post(f.action, f.fields)
		backupCodes(t, p)
		in := rp.exchange(rp.code(b.get(s.issuer+"/login/continue?flow="+f.fields.Get("flow")), ar), ar)
		if !slices.Equal(in.claims.AMR, amrHWK) || in.claims.Sub != member.ID {
			t.Fatalf("claims after enrolling a key = %+v", in.claims)
		}

		nb := s.newBrowser()
		ar = rp.authRequest()
		p = nb.useKey(nb.login(nb.get(ar.url), member.Email, member.Password), key, s.keyOrigin())
		if in := rp.exchange(rp.code(p, ar), ar); !slices.Equal(in.claims.AMR, amrHWK) {
			t.Fatalf("claims signing in with the enrolled key = %+v", in.claims)
		}
	})
}

// TestOwnerResetDeletesKeys: an owner's reset deletes the member's
// security keys: a sign-in waiting for the key is refused (and does not
// finish with the password alone), and after the reset the member enrolls
// again (the same key registers afresh).
func TestOwnerResetDeletesKeys(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, backend storetest.Backend) {
		s := newKeyServer(t, backend, testOptions{})
		ctx := context.Background()
		owner, member := s.createUser("owner@example.com"), s.createUser("member@example.com")
		org := s.org("Acme", owner, member)
		rp := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true})
		ob := s.newBrowser()
		ob.enrollInSettings(owner)
		key := newSoftKey(t)
		mb := s.newBrowser()
		mb.signInToSettings(member)
		backupCodes(t, mb.registerKey(s, key, "Member key"))

		// A sign-in waits at the key when the owner resets the member.
		wb := s.newBrowser()
		ar := rp.authRequest()
		waiting := wb.login(wb.get(ar.url), member.Email, member.Password)
		waiting.keyForm(t)
		if p := ob.post("/settings/members/"+member.ID+"/reset", url1("org", org)); !strings.Contains(p.body, "was reset") {
			t.Fatalf("owner's reset: %d\n%.2000s", p.status, p.body)
		}
		if rows, err := s.db.ListWebAuthnCredentials(ctx, member.ID); err != nil || len(rows) != 0 {
			t.Fatalf("the member's keys after the reset: %+v, %v", rows, err)
		}
		// Neither the deleted key nor the password the flow already holds
		// finishes it: the reset ended the sign-in.
		if p := wb.useKey(waiting, key, s.keyOrigin()); p.status != http.StatusBadRequest || !strings.Contains(p.body, "Sign-in expired") || p.location != "" {
			t.Fatalf("a sign-in waiting at the key during the reset: %d at %s (location %q)", p.status, p.url, p.location)
		}
		if p := wb.get(s.issuer + "/login/continue?flow=" + waiting.keyForm(t).fields.Get("flow")); p.status != http.StatusBadRequest || p.location != "" {
			t.Fatalf("the waiting flow continued: %d at %s (location %q)", p.status, p.url, p.location)
		}
		// A new sign-in with the password alone is told to use the email.
		fresh := s.newBrowser()
		if p := fresh.login(fresh.get(rp.authRequest().url), member.Email, member.Password); p.status != http.StatusForbidden || !strings.Contains(p.body, "Check your email") {
			t.Fatalf("password sign-in while the reset is pending: %d at %s", p.status, p.url)
		}
		if n, _ := s.db.CountBackupCodes(ctx, member.ID); n != 0 {
			t.Fatalf("%d backup codes after the reset", n)
		}

		// The link, then enrollment: the same key is a new key now.
		rb := s.newBrowser()
		link := s.latestLink(member)
		rb.post(strings.TrimPrefix(link, s.issuer), nil)
		ar = rp.authRequest()
		p := rb.login(rb.get(ar.url), member.Email, member.Password)
		if p.url.Path != "/login/enroll" {
			t.Fatalf("after the reset, sign-in went to %s, want enrollment", p.url)
		}
		f := p.keyForm(t)
		f.fields.Set("response", key.create(s.keyOrigin(), f.options))
		backupCodes(t, rb.post(f.action, f.fields))
		if in := rp.exchange(rp.code(rb.get(s.issuer+"/login/continue?flow="+f.fields.Get("flow")), ar), ar); !slices.Equal(in.claims.AMR, amrHWK) {
			t.Fatalf("claims after re-enrolling the key = %+v", in.claims)
		}
	})
}

// TestSecurityKeyRenameRemove: keys are renamed and removed from Security
// Settings; another member's browser cannot touch them; the last factor
// stays while an organization requires 2FA; a registration answered after
// the ceremony expired is refused; changes need a recent sign-in.
func TestSecurityKeyRenameRemove(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, backend storetest.Backend) {
		clock := movingClock()
		s := newKeyServer(t, backend, testOptions{now: clock.now})
		ctx := context.Background()
		u, other := s.createUser("keys@example.com"), s.createUser("other@example.com")
		first, second := newSoftKey(t), newSoftKey(t)
		b := s.newBrowser()
		b.signInToSettings(u)
		backupCodes(t, b.registerKey(s, first, "Desk key"))
		p := b.registerKey(s, second, "Travel key")
		if p.url.Path != "/settings/security" || !strings.Contains(p.body, "The security key was added.") || !strings.Contains(p.body, "10 of 10 left") {
			t.Fatalf("after a second key: %d at %s\n%.3000s", p.status, p.url, p.body)
		}
		id1, id2 := base64.RawURLEncoding.EncodeToString(first.cred.ID), base64.RawURLEncoding.EncodeToString(second.cred.ID)

		p = b.post("/settings/security/keys/"+id1+"/rename", url1("name", "Home key"))
		if !strings.Contains(p.body, "<strong>Home key</strong>") || strings.Contains(p.body, "Desk key") {
			t.Fatalf("after renaming:\n%.3000s", p.body)
		}
		// Another member's browser: nothing changes.
		xb := s.newBrowser()
		xb.signInToSettings(other)
		xb.post("/settings/security/keys/"+id1+"/rename", url1("name", "Stolen"))
		xb.post("/settings/security/keys/"+id2+"/remove", nil)
		if rows, _ := s.db.ListWebAuthnCredentials(ctx, u.ID); len(rows) != 2 || rows[0].Name == "Stolen" || rows[1].Name == "Stolen" {
			t.Fatalf("another member changed the keys: %+v", rows)
		}

		p = b.post("/settings/security/keys/"+id2+"/remove", nil)
		if !strings.Contains(p.body, "The security key was removed.") || strings.Contains(p.body, "Travel key") || !strings.Contains(p.body, "Home key") {
			t.Fatalf("after removing:\n%.3000s", p.body)
		}

		// The last factor stays while the organization requires one.
		org := s.org("Strict", other, u)
		if err := s.db.SetOrganizationRequire2FA(ctx, org, true); err != nil {
			t.Fatal(err)
		}
		p = b.post("/settings/security/keys/"+id1+"/remove", nil)
		if p.status != http.StatusConflict || !strings.Contains(p.body, "last second factor") {
			t.Fatalf("removing the last key under the policy: %d\n%.3000s", p.status, p.body)
		}
		if rows, _ := s.db.ListWebAuthnCredentials(ctx, u.ID); len(rows) != 1 || rows[0].Name != "Home key" {
			t.Fatalf("a refused removal changed the keys: %+v", rows)
		}

		// A registration answered after five minutes is refused.
		f := b.get(s.issuer + "/settings/security/keys/new").keyForm(t)
		clock.advance(5*time.Minute + time.Second)
		f.fields.Set("response", newSoftKey(t).create(s.keyOrigin(), f.options))
		if p := b.post(f.action, f.fields); p.status != http.StatusBadRequest || !strings.Contains(p.body, "could not be added") {
			t.Fatalf("a late registration: %d\n%.2000s", p.status, p.body)
		}
		// Ten minutes after signing in, changes ask for the sign-in again.
		clock.advance(5 * time.Minute)
		if p := b.post("/settings/security/keys/"+id1+"/rename", url1("name", "Late")); !strings.Contains(p.body, `name="password"`) {
			t.Fatalf("a rename without a recent sign-in: %d at %s", p.status, p.url)
		}
		if rows, _ := s.db.ListWebAuthnCredentials(ctx, u.ID); len(rows) != 1 || rows[0].Name != "Home key" {
			t.Fatalf("keys = %+v", rows)
		}
	})
}
