package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/twofold-id/twofold/mail/mailtest"
	"github.com/twofold-id/twofold/store"
)

// journeyOwnerReset: an owner resets a member's two-factor authentication
// from Settings > Members, reads the audit log and requires 2FA for the
// organization; the member, in their own browser, opens the link from
// the email (delivered to an SMTP server in the test), completes the
// reset, signs in with the password, sets up an authenticator app again
// and returns to the application.
func journeyOwnerReset(t *testing.T) {
	smtp := mailtest.Start(t, "127.0.0.1:0", mailtest.Options{})
	s := newBrowserTestServer(t, testOptions{mutate: withSMTP(smtp)})
	owner, member := s.createPerson("olivia@example.com", "Olivia Owner"), s.createPerson("max@example.com", "Max Member")
	org := s.org("Acme", owner, member)
	cb := newRPCallback(t)
	rp := s.newRP(store.Client{Name: "Test App", SkipConsent: true, RequirePKCE: true, RedirectURIs: []string{cb.URL + "/callback"}})
	// Both have an authenticator app: the owner needs theirs to reset
	// anyone, and the member has lost theirs.
	ownerApp, _ := s.newBrowser().enrollInSettings(owner)
	s.newBrowser().enrollInSettings(member)
	smtp.Wait(t, 2, 10*time.Second) // "Two-factor authentication is on", twice

	ownerTab := newChromeTab(t, "owner-reset")
	resetFromConsole(ownerTab, s, owner, ownerApp, member, org)
	link := ""
	for _, m := range smtp.Wait(t, 3, 10*time.Second) {
		if m.To[0] == member.Email && m.Subject == resetSubject {
			link = resetLink(t, m)
		}
	}
	if !strings.HasPrefix(link, s.issuer+"/reset/") {
		t.Fatalf("the reset email's link %q is not on the issuer", link)
	}

	tab := newChromeTab(t, "member-reset")
	tab.navigate("open the link in the email", http.StatusOK, chromedp.Navigate(link))
	tab.expectPage("email-link", s.issuer+"/reset/", "Reset two-factor authentication")
	tab.expectText("the page says whose account", "p.lead", member.Email)
	tab.onPhone("email-link")
	tab.navigate("complete the reset", http.StatusOK, chromedp.Click(chromedp.CSS(`form[action^="/reset/"] button[type="submit"]`)))
	tab.expectPage("reset-complete", s.issuer+"/reset/", "Reset complete")
	tab.navigate("click Sign in", http.StatusOK, chromedp.Click(chromedp.CSS(`a.button.primary`)))
	tab.expectPage("sign-in", s.issuer+"/login", "Sign in")
	tab.signIn(member)
	tab.expectPage("enroll-again", s.issuer+"/login/enroll", "Set up two-factor authentication")
	tab.expectText("the page says why", "p.lead", "needs two-factor authentication before you can continue")
	app := tab.readSecret()
	tab.enroll(app, `form[action="/login/enroll"]`)
	tab.navigate("I have saved my codes", http.StatusOK, chromedp.Click(chromedp.CSS(`a.button.primary`)))
	tab.expectPage("security-on-again", s.issuer+"/settings/security", "Security settings")

	// Back to the application: signed in already, with the new factor.
	ar := rp.authRequest()
	tab.navigate("open the application", http.StatusOK, chromedp.Navigate(ar.url))
	tab.expectPage("back-at-the-app", cb.URL+"/callback?", "Signed in to Test App")
	in := rp.exchange(cb.query(t).Get("code"), ar)
	if want := []string{"pwd", "otp", "mfa"}; !slices.Equal(in.claims.AMR, want) || in.claims.Sub != member.ID {
		t.Errorf("back at the application as %q with amr %q, want %q with %q", in.claims.Sub, in.claims.AMR, member.ID, want)
	}
	if m := smtp.Wait(t, 4, 10*time.Second)[3]; m.To[0] != member.Email || !strings.Contains(m.Text, "on again") {
		t.Errorf("the last email = %q to %v, want the member told 2FA is on again", m.Subject, m.To)
	}
}

// resetFromConsole plays the owner's side: sign in with password and
// code to Settings > Members, Reset 2FA on the member (there is none on
// the owner's own row), Reset; the audit log; require 2FA.
func resetFromConsole(tab *chromeTab, s *testServer, owner testUser, ownerApp *authenticator, member testUser, org string) {
	tab.t.Helper()
	tab.navigate("open Settings > Members", http.StatusOK, chromedp.Navigate(s.issuer+"/settings/members"))
	tab.expectPage("sign-in", s.issuer+"/login", "Sign in")
	tab.signIn(owner)
	tab.expectPage("second-factor", s.issuer+"/login/2fa", "Two-factor authentication")
	tab.submitCode("enter the code from the app", ownerApp.fresh(), http.StatusOK)
	tab.expectPage("members", s.issuer+"/settings/members", "Members")
	tab.expectNoResetFor(owner)
	tab.onPhone("members")
	tab.inDark("members")

	resetURL := fmt.Sprintf("/settings/members/%s/reset?org=%s", member.ID, org)
	tab.navigate("click Reset 2FA", http.StatusOK, chromedp.Click(chromedp.CSS(`a.button[href="`+resetURL+`"]`)))
	tab.expectPage("confirm", s.issuer+resetURL, "Reset two-factor authentication for "+member.Email+"?")
	tab.onPhone("confirm")
	tab.inDark("confirm")
	tab.navigate("click Reset", http.StatusOK, chromedp.Click(chromedp.CSS(`form[action="/settings/members/`+member.ID+`/reset"] button[type="submit"]`)))
	tab.expectPage("reset-pending", s.issuer+"/settings/members", "Members")
	tab.expectText("the console says what happened", ".notice", "Two-factor authentication was reset")
	tab.expectText("the member is reset pending", "tbody", "Reset pending")
	tab.expectText("the owner can resend the link", "tbody", "Resend link")

	tab.navigate("open the audit log", http.StatusOK, chromedp.Click(chromedp.CSS(`a[href="/settings/audit?org=`+org+`"]`)))
	tab.expectPage("audit", s.issuer+"/settings/audit", "Audit log")
	tab.expectText("the reset is in the audit log", "tbody", "reset.initiated")
	tab.navigate("back to the members", http.StatusOK, chromedp.Click(chromedp.CSS(`a[href="/settings/members?org=`+org+`"]`)))
	tab.do("tick Require two-factor authentication", chromedp.Click(chromedp.CSS(`input[name="require"]`)))
	tab.navigate("save the policy", http.StatusOK, chromedp.Click(chromedp.CSS(`form[action="/settings/organization/require-2fa"] button[type="submit"]`)))
	tab.expectPage("policy-saved", s.issuer+"/settings/members", "Members")
	tab.expectText("the console says the policy is saved", ".notice", "policy was saved")
}

// expectNoResetFor checks the members page offers no reset of u: the
// owner's own row has no Reset 2FA.
func (c *chromeTab) expectNoResetFor(u testUser) {
	c.t.Helper()
	n := chromeRun(c, "look for Reset 2FA on "+u.Email, chromedp.Evaluate[int](fmt.Sprintf(
		`document.querySelectorAll('a[href*="/members/%s/"], form[action*="/members/%s/"]').length`, u.ID, u.ID)))
	if n != 0 {
		c.fail("the members page offers %d actions on %s's own 2FA", n, u.Email)
	}
	c.expectText("the owner's row says it is them", "tbody", "(you)")
}
