package main

import (
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// authenticator is a test's authenticator app: it hands out codes for time
// steps not used before, as a person would wait for a fresh code, so a
// test never trips the replay rule by accident. Up to three codes are good
// at once (one step of skew either way); a fourth waits for the clock.
type authenticator struct {
	t      *testing.T
	secret string
	// now is the app's clock: twofold's, when a test moves that.
	now  func() time.Time
	mu   sync.Mutex
	last int64
}

func (a *authenticator) next() string {
	a.t.Helper()
	// The current step first, then the next, then the previous: the
	// previous step's code may expire before the server checks it.
	return a.take(0, 1, -1)
}

// take returns the code of the first step, at the given offsets from the
// current one, not used before; it waits for the clock when all were.
func (a *authenticator) take(offsets ...int64) string {
	a.t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now
	if now == nil {
		now = time.Now
	}
	deadline := time.Now().Add(40 * time.Second)
	for time.Now().Before(deadline) {
		cur := now().Unix() / 30
		for _, o := range offsets {
			if s := cur + o; s > a.last {
				a.last = s
				return a.codeAt(s)
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	a.t.Fatal("no fresh TOTP step")
	return ""
}

func (a *authenticator) codeAt(step int64) string {
	c, err := totp.GenerateCodeCustom(a.secret, time.Unix(step*30, 0), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		a.t.Fatal(err)
	}
	return c
}

var (
	secretOnPage = regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`)
	codeOnPage   = regexp.MustCompile(`<li><code>([0-9a-z]{5}-[0-9a-z]{5}-[0-9a-z]{5})</code></li>`)
)

// backupCodes reads the backup codes shown on p.
func backupCodes(t *testing.T, p page) []string {
	t.Helper()
	var codes []string
	for _, m := range codeOnPage.FindAllStringSubmatch(p.body, -1) {
		codes = append(codes, m[1])
	}
	if len(codes) != 10 {
		t.Fatalf("expected 10 backup codes on the page, found %d (%d at %s):\n%.3000s", len(codes), p.status, p.url, p.body)
	}
	return codes
}

// enrollPage reads the secret from an enrollment page and returns the
// authenticator holding it.
func enrollSecret(t *testing.T, p page) *authenticator {
	t.Helper()
	m := secretOnPage.FindStringSubmatch(p.body)
	if m == nil || !strings.Contains(p.body, "otpauth://totp/") || !strings.Contains(p.body, `src="data:image/png;base64,`) {
		t.Fatalf("expected the enrollment page with secret, link and QR code, got %d at %s:\n%.2000s", p.status, p.url, p.body)
	}
	return &authenticator{t: t, secret: m[1]}
}

// signInToSettings signs the browser in to twofold itself at /settings/security.
func (b *browser) signInToSettings(u testUser) page {
	b.t.Helper()
	p := b.get(b.issuer + "/settings/security")
	if strings.Contains(p.body, `name="password"`) {
		p = b.login(p, u.Email, u.Password)
	}
	return p
}

// enrollInSettings turns TOTP on from Security Settings and returns the
// authenticator and the backup codes.
func (b *browser) enrollInSettings(u testUser) (*authenticator, []string) {
	b.t.Helper()
	b.signInToSettings(u)
	p := b.get(b.issuer + "/settings/security/totp")
	app := enrollSecret(b.t, p)
	p = b.post("/settings/security/totp", url1("code", app.next()))
	return app, backupCodes(b.t, p)
}

// secondFactor submits code on the second-factor page p.
func (b *browser) secondFactor(p page, code string) page {
	b.t.Helper()
	if !strings.Contains(p.body, `autocomplete="one-time-code"`) || !strings.Contains(p.url.Path, "/login/2fa") {
		b.t.Fatalf("expected the second-factor page, got %d at %s:\n%.2000s", p.status, p.url, p.body)
	}
	form := p.hidden()
	form.Set("code", code)
	return b.post("/login/2fa", form)
}
