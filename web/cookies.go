package web

import (
	"net/http"
	"net/url"
	"time"
)

// Cookies makes twofold's cookies. They are always HttpOnly and
// SameSite=Lax (sent on top-level navigations from relying parties, never
// on their cross-site POSTs). When the issuer is https they are Secure and
// named with the __Host- prefix, which makes the browser refuse them
// unless Secure, host-only and Path=/: no subdomain can plant or shadow them.
type Cookies struct {
	secure bool
}

// NewCookies returns the cookie policy for issuer.
func NewCookies(issuer *url.URL) Cookies { return Cookies{secure: issuer.Scheme == "https"} }

// Name returns the cookie's full name for base ("twofold_session").
func (c Cookies) Name(base string) string {
	if c.secure {
		return "__Host-" + base
	}
	return base
}

// Set sets cookie base to value; maxAge 0 makes a browser-session cookie.
func (c Cookies) Set(w http.ResponseWriter, base, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: c.Name(base), Value: value, Path: "/", MaxAge: int(maxAge.Seconds()),
		HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode,
	})
}

// Get returns cookie base's value, or "".
func (c Cookies) Get(r *http.Request, base string) string {
	ck, err := r.Cookie(c.Name(base))
	if err != nil {
		return ""
	}
	return ck.Value
}

// Clear deletes cookie base.
func (c Cookies) Clear(w http.ResponseWriter, base string) {
	http.SetCookie(w, &http.Cookie{
		Name: c.Name(base), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode,
	})
}
