package main

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twofold-id/twofold/mail/mailtest"
	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
)

// org puts owner and members into a new organization and returns its id.
func (s *testServer) org(name string, owner testUser, members ...testUser) string {
	s.t.Helper()
	ctx := context.Background()
	id := "org-" + strings.ToLower(name)
	if err := s.db.CreateOrganization(ctx, store.Organization{ID: id, Name: name, CreatedAt: time.Now()}); err != nil {
		s.t.Fatal(err)
	}
	put := func(u testUser, role store.Role) {
		if err := s.db.PutMembership(ctx, store.Membership{OrgID: id, UserID: u.ID, Role: role, CreatedAt: time.Now()}); err != nil {
			s.t.Fatal(err)
		}
	}
	put(owner, store.RoleOwner)
	for _, m := range members {
		put(m, store.RoleMember)
	}
	return id
}

var resetLinkInMail = regexp.MustCompile(`https?://[^\s"<>]+/reset/[A-Z0-9]+`)

// resetLink finds the re-enrollment link in a reset email.
func resetLink(t *testing.T, m mailtest.Message) string {
	t.Helper()
	link := resetLinkInMail.FindString(m.Text)
	if link == "" || !strings.Contains(m.HTML, link) {
		t.Fatalf("no reset link in both parts of %q:\n%s", m.Subject, m.Text)
	}
	return link
}

// TestOwnerReset is the whole flow: an owner resets a member's 2FA from
// Settings > Members; the member's refresh token and TOTP stop working at
// once; the password alone yields nothing; exactly one email with a link
// arrives; opening it changes nothing; completing it and signing in leads
// straight to enrollment; the new factor signs in (amr checked); the
// member is told 2FA is on again; the used link is refused.
func TestOwnerReset(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, backend storetest.Backend) {
		smtp := mailtest.Start(t, "127.0.0.1:0", mailtest.Options{})
		s := newTestServer(t, backend, withSMTP(smtp))
		ctx := context.Background()
		owner, member := s.createUser("owner@example.com"), s.createUser("member@example.com")
		orgID := s.org("Acme", owner, member)
		rp := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true})

		ownerBrowser := s.newBrowser()
		ownerBrowser.enrollInSettings(owner) // owners reset with their own second factor
		memberBrowser := s.newBrowser()
		memberApp, _ := memberBrowser.enrollInSettings(member)
		ar := rp.authRequest()
		p := memberBrowser.get(ar.url) // the member's session (with 2FA) gives a code at once
		before := rp.exchange(rp.code(p, ar), ar)
		smtp.Wait(t, 2, 10*time.Second) // the two "2FA is on" mails

		// Settings > Members: Reset 2FA on the member, none on oneself.
		p = ownerBrowser.get(s.issuer + "/settings/members")
		if !strings.Contains(p.body, member.Email) || !strings.Contains(p.body, "/settings/members/"+member.ID+"/reset") ||
			strings.Contains(p.body, "/settings/members/"+owner.ID+"/reset") {
			t.Fatalf("members page:\n%.3000s", p.body)
		}
		p = ownerBrowser.get(s.issuer + "/settings/members/" + member.ID + "/reset?org=" + orgID)
		if !strings.Contains(p.body, "revoke their access to every application") {
			t.Fatalf("confirmation page:\n%.2000s", p.body)
		}
		p = ownerBrowser.post("/settings/members/"+member.ID+"/reset", url.Values{"org": {orgID}})
		if !strings.Contains(p.body, "was reset") || !strings.Contains(p.body, "Reset pending") {
			t.Fatalf("after reset:\n%.3000s", p.body)
		}

		// At once: the refresh token, the access token and the session are dead.
		if resp, _ := rp.postForm("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {before.token.RefreshToken}}); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("refresh token after reset: %d", resp.StatusCode)
		}
		if resp, _ := rp.userinfo(before.token.AccessToken); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("access token after reset: %d", resp.StatusCode)
		}
		if p := memberBrowser.get(s.issuer + "/settings/security"); !strings.Contains(p.body, `name="password"`) {
			t.Fatal("the member's session survived the reset")
		}
		// The password alone yields no session and no code; the old TOTP is gone.
		b := s.newBrowser()
		ar = rp.authRequest()
		p = b.login(b.get(ar.url), member.Email, member.Password)
		if p.status != http.StatusForbidden || !strings.Contains(p.body, "Check your email") || p.location != "" {
			t.Fatalf("password sign-in while reset pending: %d %s", p.status, p.url)
		}
		if _, err := s.db.GetTOTPCredential(ctx, member.ID); err == nil {
			t.Fatal("the member's TOTP credential survived the reset")
		}

		// Exactly one email, with the link.
		msgs := smtp.Wait(t, 3, 10*time.Second)
		m := msgs[2]
		if m.To[0] != member.Email || m.Subject != "Your two-factor authentication was reset" {
			t.Fatalf("reset mail = %+v", m)
		}
		link := resetLink(t, m)
		time.Sleep(300 * time.Millisecond)
		if n := len(smtp.Messages()); n != 3 {
			t.Fatalf("%d messages after the reset, want exactly one more", n)
		}

		// Opening the link changes nothing.
		mb := s.newBrowser()
		p = mb.get(link)
		if !strings.Contains(p.body, "Complete reset") || p.header.Get("Cache-Control") != "no-store" || p.header.Get("Referrer-Policy") != "no-referrer" {
			t.Fatalf("link page: %d\n%.1500s", p.status, p.body)
		}
		if u, _ := s.db.GetUser(ctx, member.ID); u.MFAState != store.MFAResetPending {
			t.Fatalf("opening the link changed the state to %s", u.MFAState)
		}
		p = mb.post(strings.TrimPrefix(link, s.issuer), nil)
		if !strings.Contains(p.body, "Reset complete") {
			t.Fatalf("completing the reset: %d\n%.1500s", p.status, p.body)
		}

		// Sign in: straight to enrollment, then new backup codes, then the app.
		ar = rp.authRequest()
		p = mb.login(mb.get(ar.url), member.Email, member.Password)
		newApp := enrollSecret(t, p)
		if newApp.secret == memberApp.secret {
			t.Fatal("re-enrollment reused the old secret")
		}
		form := p.hidden()
		form.Set("code", newApp.next())
		backupCodes(t, mb.post("/login/enroll", form))
		after := rp.exchange(rp.code(mb.get(s.issuer+"/login/continue?flow="+form.Get("flow")), ar), ar)
		if !slices.Equal(after.claims.AMR, []string{"pwd", "otp", "mfa"}) || after.claims.Sub != member.ID {
			t.Fatalf("claims after re-enrollment = %+v", after.claims)
		}
		if m := smtp.Wait(t, 4, 10*time.Second)[3]; m.To[0] != member.Email || !strings.Contains(m.Text, "on again") {
			t.Fatalf("on-again mail = %+v", m)
		}
		// The used link is refused and says so.
		if p := s.newBrowser().get(link); p.status != http.StatusBadRequest || !strings.Contains(p.body, "already used") {
			t.Fatalf("used link: %d\n%.800s", p.status, p.body)
		}
		// The audit log of the organization tells the story.
		events, _ := s.db.ListAudit(ctx, store.AuditFilter{OrgID: orgID})
		var kinds []string
		for _, e := range events {
			kinds = append(kinds, e.Kind)
			if e.Kind == "reset.initiated" && (e.ActorID != owner.ID || e.TargetID != member.ID || e.ClientAddr == "") {
				t.Fatalf("reset event = %+v", e)
			}
		}
		if !slices.Contains(kinds, "reset.initiated") || !slices.Contains(kinds, "reset.link_used") {
			t.Fatalf("org audit = %v", kinds)
		}
	})
}

// TestResetEndsSignInsInProgress: a member's sign-in that already passed
// its second factor and waits at the consent page dies with an owner's
// reset; it never turns into a code.
func TestResetEndsSignInsInProgress(t *testing.T) {
	s := newTestServer(t, storetest.SQLite(), nil)
	owner, member := s.createUser("o2@example.com"), s.createUser("m2@example.com")
	orgID := s.org("Inflight", owner, member)
	ob := s.newBrowser()
	ob.enrollInSettings(owner)
	app, _ := s.newBrowser().enrollInSettings(member)
	rp := s.newRP(store.Client{RequirePKCE: true}) // asks for consent

	mb := s.newBrowser()
	ar := rp.authRequest()
	p := mb.secondFactor(mb.login(mb.get(ar.url), member.Email, member.Password), app.next())
	if !strings.Contains(p.body, `name="decision"`) {
		t.Fatalf("expected the consent page after the second factor, got %s", p.url)
	}
	ob.post("/settings/members/"+member.ID+"/reset", url.Values{"org": {orgID}})

	after := mb.consent(p, "allow")
	if after.location != "" || after.status < 400 {
		t.Fatalf("a sign-in in progress survived the reset: %d %s %q", after.status, after.url, after.location)
	}
	if p := mb.get(s.issuer + "/oauth2/auth?flow=" + p.hidden().Get("flow")); p.location != "" || p.status != http.StatusBadRequest {
		t.Fatalf("resuming the flow after the reset: %d %q", p.status, p.location)
	}
}
