package main

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/twofold-id/twofold/store"
)

// journeyDemo is the newcomer's first minutes after `make run`: the demo
// application, "Sign in with twofold", a demo account's email and
// password, the consent page, and the claims the application received;
// then signing out from the application.
func journeyDemo(t *testing.T) {
	s := newBrowserTestServer(t, testOptions{mutate: func(c *Config) { c.Dev = true }})
	if s.srv.demo == nil || len(s.srv.demo.Accounts) < 2 {
		t.Fatal("development mode seeded no demo accounts")
	}
	acct := s.srv.demo.Accounts[1] // the member; the passwords are new on every start
	tab := newChromeTab(t, "demo")

	tab.navigate("open the demo application", http.StatusOK, chromedp.Navigate(s.issuer+"/demo"))
	tab.expectPage("demo-app", s.issuer+"/demo", "Demo application")
	tab.navigate("click Sign in with twofold", http.StatusOK, chromedp.Click(chromedp.CSS(`a.button.primary[href="/demo/login"]`)))
	tab.expectPage("sign-in", s.issuer+"/oauth2/auth", "Sign in")
	tab.expectText("the sign-in page names the product", "header .product", "twofold")
	tab.expectText("the sign-in page names the application", "p.lead", "to continue to Demo application")
	tab.expectFocusVisible("#password")
	tab.onPhone("sign-in")
	tab.inDark("sign-in")

	tab.signIn(testUser{User: store.User{Email: acct.Email}, Password: acct.Password})
	tab.expectPage("consent", s.issuer+"/consent", "Allow Demo application?")
	tab.onPhone("consent")
	tab.navigate("allow", http.StatusOK, chromedp.Click(chromedp.CSS(`button[name="decision"][value="allow"]`)))
	tab.expectPage("claims", s.issuer+"/demo", "Demo application")
	meta := chromeRun(tab, "read what the application received", chromedp.Text(chromedp.CSS("dl.meta")))
	for _, want := range []string{acct.Email, "pwd", "urn:twofold:acr:pwd"} {
		if !strings.Contains(meta, want) {
			tab.fail("the demo application does not show %q: %q", want, meta)
		}
	}
	claims := chromeRun(tab, "read the ID token's claims", chromedp.Text(chromedp.CSS("pre")))
	if !strings.Contains(claims, `"iss": "`+s.issuer+`"`) || !strings.Contains(claims, `"demo"`) {
		tab.fail("the ID token claims do not name the issuer and the demo client:\n%s", claims)
	}

	tab.navigate("sign out of the demo application", http.StatusOK, chromedp.Click(chromedp.CSS(`a.button[href="/demo/logout"]`)))
	tab.expectPage("sign-out", s.issuer+"/logout", "Sign out?")
	tab.navigate("confirm", http.StatusOK, chromedp.Click(chromedp.CSS(`form[action="/logout"] button[type="submit"]`)))
	tab.expectPage("signed-out", s.issuer+"/demo", "Demo application")
	tab.expectText("the demo offers to sign in again", "a.button.primary", "Sign in with twofold")
}

// journeyTOTP: a member turns on two-factor authentication in Security
// settings, reading the key from the page as a person with an
// authenticator app would, saves the backup codes and signs out; then an
// application's sign-in asks for a code from the app, and the next one
// takes a backup code instead.
func journeyTOTP(t *testing.T) {
	s := newBrowserTestServer(t, testOptions{})
	u := s.createPerson("grace@example.com", "Grace Hopper")
	cb := newRPCallback(t)
	rp := s.newRP(store.Client{Name: "Test App", SkipConsent: true, RequirePKCE: true, RedirectURIs: []string{cb.URL + "/callback"}})
	tab := newChromeTab(t, "totp")

	tab.navigate("open Security settings", http.StatusOK, chromedp.Navigate(s.issuer+"/settings/security"))
	tab.expectPage("sign-in", s.issuer+"/login", "Sign in")
	tab.signIn(u)
	tab.expectPage("security-off", s.issuer+"/settings/security", "Security settings")
	tab.navigate("click Configure 2FA", http.StatusOK, chromedp.Click(chromedp.CSS(`a.button[href="/settings/security/totp"]`)))
	tab.expectPage("enroll", s.issuer+"/settings/security/totp", "Set up two-factor authentication")
	tab.onPhone("enroll")
	app := tab.readSecret()
	tab.screenshot("enroll-key")
	codes := tab.enroll(app, `form[action="/settings/security/totp"]`)
	tab.onPhone("backup-codes")
	tab.navigate("I have saved my codes", http.StatusOK, chromedp.Click(chromedp.CSS(`a.button.primary`)))
	tab.expectPage("security-on", s.issuer+"/settings/security", "Security settings")
	tab.expectText("2FA is on", "dl.meta", "10 of 10 left")
	tab.signOut(s)

	// Sign in to the application with a code from the app.
	ar := rp.authRequest()
	tab.navigate("the application asks to sign in", http.StatusOK, chromedp.Navigate(ar.url))
	tab.expectPage("app-sign-in", s.issuer+"/oauth2/auth", "Sign in")
	tab.signIn(u)
	tab.expectPage("second-factor", s.issuer+"/login/2fa", "Two-factor authentication")
	tab.onPhone("second-factor")
	tab.inDark("second-factor")
	tab.submitCode("enter the code from the app", app.fresh(), http.StatusOK)
	tab.expectPage("back-at-the-app", cb.URL+"/callback?", "Signed in to Test App")
	in := rp.exchange(cb.query(t).Get("code"), ar)
	if want := []string{"pwd", "otp", "mfa"}; !slices.Equal(in.claims.AMR, want) || in.claims.ACR != "urn:twofold:acr:mfa" {
		t.Errorf("after a code: amr %q acr %q, want %q urn:twofold:acr:mfa", in.claims.AMR, in.claims.ACR, want)
	}

	// Signed out, the next sign-in takes a backup code, typed as printed.
	tab.navigate("open the account page", http.StatusOK, chromedp.Navigate(s.issuer+"/"))
	tab.signOut(s)
	ar = rp.authRequest()
	tab.navigate("the application asks to sign in again", http.StatusOK, chromedp.Navigate(ar.url))
	tab.signIn(u)
	tab.expectPage("second-factor-again", s.issuer+"/login/2fa", "Two-factor authentication")
	tab.submitCode("enter a backup code", codes[0], http.StatusOK)
	tab.expectPage("back-with-a-backup-code", cb.URL+"/callback?", "Signed in to Test App")
	in = rp.exchange(cb.query(t).Get("code"), ar)
	if want := []string{"pwd", "otp", "mfa"}; !slices.Equal(in.claims.AMR, want) {
		t.Errorf("after a backup code: amr %q, want %q", in.claims.AMR, want)
	}
	if n, err := s.db.CountBackupCodes(context.Background(), u.ID); err != nil || n != 9 {
		t.Errorf("%d backup codes left (%v), want 9", n, err)
	}
}

// expectText checks that the element sel contains want.
func (c *chromeTab) expectText(what, sel, want string) {
	c.t.Helper()
	if got := chromeRun(c, what, chromedp.Text(chromedp.CSS(sel))); !strings.Contains(got, want) {
		c.fail("%s: %s says %q, want %q in it", what, sel, got, want)
	}
}

// readSecret opens "Can't scan it?" on the enrollment page and reads the
// key into a new authenticator app.
func (c *chromeTab) readSecret() *authenticator {
	c.t.Helper()
	c.do("open Can't scan it?", chromedp.Click(chromedp.CSS(`details summary`)), chromedp.WaitVisible(chromedp.ID("totp-secret")))
	secret := strings.TrimSpace(chromeRun(c, "read the key", chromedp.Text(chromedp.ID("totp-secret"))))
	if len(secret) < 16 || strings.Trim(secret, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") != "" {
		c.fail("the key on the page is not base32: %q", secret)
	}
	if link := chromeRun(c, "read the app link", chromedp.AttributeValue(chromedp.CSS(`a[href^="otpauth://totp/"]`), "href")); !link.Exists {
		c.fail("no otpauth:// link beside the key")
	}
	return &authenticator{t: c.t, secret: secret}
}

// enroll types a code from app into the enrollment form and reads the
// backup codes the next page shows.
func (c *chromeTab) enroll(app *authenticator, form string) []string {
	c.t.Helper()
	c.do("type the code from the app", chromedp.SendKeys(chromedp.ID("code"), app.fresh()))
	c.navigate("turn on two-factor authentication", http.StatusOK, chromedp.Click(chromedp.CSS(form+` button[type="submit"]`)))
	c.expectPage("backup-codes", c.location(), "Save your backup codes")
	codes := chromeRun(c, "read the backup codes", chromedp.Evaluate[[]string](`[...document.querySelectorAll("ul.codes code")].map(c => c.textContent)`))
	if len(codes) != 10 {
		c.fail("%d backup codes on the page, want 10: %q", len(codes), codes)
	}
	return codes
}

// submitCode types code into the second-factor page and submits it.
func (c *chromeTab) submitCode(what, code string, wantStatus int64) {
	c.t.Helper()
	c.do(what, chromedp.SendKeys(chromedp.ID("code"), code))
	c.navigate(what+": verify", wantStatus, chromedp.Click(chromedp.CSS(`form[action="/login/2fa"] button[type="submit"]`)))
}

// signOut signs out from the account page, which the tab shows or opens.
func (c *chromeTab) signOut(s *testServer) {
	c.t.Helper()
	if loc := c.location(); loc != s.issuer+"/" {
		c.navigate("open the account page", http.StatusOK, chromedp.Click(chromedp.CSS(`a[href="/"]:not(.product)`)))
	}
	c.expectPage("account", s.issuer+"/", "Your account")
	c.navigate("sign out", http.StatusOK, chromedp.Click(chromedp.CSS(`form[action="/logout"] button[type="submit"]`)))
	c.expectPage("signed-out", s.issuer+"/logout", "You are signed out")
}

// location is the address the tab shows.
func (c *chromeTab) location() string {
	c.t.Helper()
	return chromeRun(c, "location", chromedp.Location())
}

// fresh returns a code from the app as a person types it: the current
// time step's, or the next step's when that was used already; never the
// previous step's, which the server stops accepting within seconds, maybe
// while the code is being typed.
func (a *authenticator) fresh() string {
	a.t.Helper()
	return a.take(0, 1)
}
