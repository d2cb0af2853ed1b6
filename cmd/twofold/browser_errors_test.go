package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/twofold-id/twofold/store"
)

// journeyErrors: the errors a person meets, each said next to its field,
// announced, and without moving the page: a wrong password, a wrong
// code, five wrong codes ending the sign-in; an owner finds no reset of
// their own 2FA, and is refused when they ask for it by address; a
// member opens a reset link a day too late.
func journeyErrors(t *testing.T) {
	clock := movingClock()
	s := newBrowserTestServer(t, testOptions{now: clock.now})
	sc := s.resetScene(clock) // Acme: an owner and a member, each with an authenticator app
	u := s.createPerson("ada@example.com", "Ada Lovelace")
	app, _ := s.newBrowser().enrollInSettings(u)
	rp := s.newRP(store.Client{Name: "Test App", SkipConsent: true, RequirePKCE: true})
	tab := newChromeTab(t, "errors")

	tab.navigate("the application asks to sign in", http.StatusOK, chromedp.Navigate(rp.authRequest().url))
	tab.expectPage("sign-in", s.issuer+"/oauth2/auth", "Sign in")
	signInButton := `form[action="/login"] button[type="submit"]`
	before := tab.position(signInButton)
	tab.do("type a wrong password", chromedp.SendKeys(chromedp.ID("email"), u.Email), chromedp.SendKeys(chromedp.ID("password"), "not my password"))
	tab.navigate("sign in", http.StatusUnauthorized, chromedp.Click(chromedp.CSS(signInButton)))
	tab.expectPage("wrong-password", s.issuer+"/login", "Sign in")
	tab.expectFieldError("a wrong password", "password", "login-error", "Incorrect email or password.")
	tab.expectText("the page still names the application", "p.lead", "to continue to Test App")
	tab.expectNoShift("a wrong password", signInButton, before)
	tab.onPhone("wrong-password")
	tab.do("type the password again", chromedp.SendKeys(chromedp.ID("password"), u.Password)) // the email stays filled in
	tab.navigate("sign in", http.StatusOK, chromedp.Click(chromedp.CSS(signInButton)))

	tab.expectPage("second-factor", s.issuer+"/login/2fa", "Two-factor authentication")
	verify := `form[action="/login/2fa"] button[type="submit"]`
	before = tab.position(verify)
	tab.submitCode("type a wrong code", "000000", http.StatusUnauthorized)
	tab.expectPage("wrong-code", s.issuer+"/login/2fa", "Two-factor authentication")
	tab.expectFieldError("a wrong code", "code", "code-error", "That code didn't work. Check it and try again, or use a backup code.")
	tab.expectNoShift("a wrong code", verify, before)
	tab.onPhone("wrong-code")
	for i := 2; i <= 5; i++ {
		tab.submitCode(fmt.Sprintf("type wrong code %d", i), "000000", http.StatusUnauthorized)
	}
	// Five wrong codes end the sign-in: even the right code is too late.
	tab.submitCode("type the right code", app.fresh(), http.StatusTooManyRequests)
	tab.expectPage("sign-in-ended", s.issuer+"/login/2fa", "Too many attempts")
	tab.expectText("the page says what to do", "p.lead", "Return to the application and sign in again.")

	// The owner: no Reset 2FA on their own row, and a refusal by address.
	tab.navigate("open Settings > Members", http.StatusOK, chromedp.Navigate(s.issuer+"/settings/members"))
	tab.signIn(sc.owner)
	tab.submitCode("enter the code from the app", sc.ownerApp.fresh(), http.StatusOK)
	tab.expectPage("members", s.issuer+"/settings/members", "Members")
	tab.expectNoResetFor(sc.owner)
	tab.navigate("ask to reset one's own 2FA", http.StatusForbidden,
		chromedp.Navigate(s.issuer+"/settings/members/"+sc.owner.ID+"/reset?org="+sc.org))
	tab.expectPage("self-reset-refused", s.issuer+"/settings/members/", "Not allowed")
	s.assertNotReset(sc.owner)

	// The member opens their reset link after 24 hours.
	link := sc.reset()
	clock.advance(25 * time.Hour)
	tab.navigate("open a day-old reset link", http.StatusBadRequest, chromedp.Navigate(link))
	tab.expectPage("expired-link", s.issuer+"/reset/", "Reset link not valid")
	tab.expectText("the page says what to do", "p.lead", "This reset link has expired. Ask an owner of your organization to send you a new one.")
	tab.onPhone("expired-link")
	s.assertStillPending(sc.member)
}

// journeyBranding: an operator's name, logo and color on the sign-in
// page, in the light and dark themes and on a phone.
func journeyBranding(t *testing.T) {
	s := newBrowserTestServer(t, testOptions{mutate: func(c *Config) {
		c.BrandName, c.BrandColor, c.BrandLogoURL = "Acme ID", "#0b7a75", "/static/favicon.svg"
	}})
	rp := s.newRP(store.Client{Name: "Acme Billing", SkipConsent: true, RequirePKCE: true})
	tab := newChromeTab(t, "branding")
	tab.navigate("the application asks to sign in", http.StatusOK, chromedp.Navigate(rp.authRequest().url))
	tab.expectPage("sign-in", s.issuer+"/oauth2/auth", "Sign in")
	tab.expectText("the page names the product", "header .product", "Acme ID")
	tab.expectText("the page names the application", "p.lead", "Acme Billing")
	got := chromeRun(tab, "read the branding", chromedp.Evaluate[map[string]string](`(() => ({
  title: document.title,
  logo: String(document.querySelector("header .product img")?.naturalWidth || 0),
  button: getComputedStyle(document.querySelector("button.primary")).backgroundColor,
}))()`))
	if got["title"] != "Sign in · Acme ID" || got["logo"] == "0" || got["button"] != "rgb(11, 122, 117)" {
		tab.fail("the operator's branding is not on the page: %v", got)
	}
	tab.onPhone("sign-in")
	tab.inDark("sign-in")
}
