package web

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

func TestCookiesFollowTheIssuerScheme(t *testing.T) {
	for _, tc := range []struct {
		issuer, wantName string
		secure           bool
	}{
		{"https://id.example.com", "__Host-twofold_session", true},
		{"http://localhost:8080", "twofold_session", false},
	} {
		u, _ := url.Parse(tc.issuer)
		c := NewCookies(u)
		rec := httptest.NewRecorder()
		c.Set(rec, "twofold_session", "v", 0)
		ck := rec.Result().Cookies()[0]
		if ck.Name != tc.wantName || ck.Secure != tc.secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Domain != "" {
			t.Errorf("%s: cookie %+v", tc.issuer, ck)
		}
		req := httptest.NewRequest("GET", "/", nil)
		req.AddCookie(&http.Cookie{Name: tc.wantName, Value: "v"})
		req.AddCookie(&http.Cookie{Name: "twofold_session_other", Value: "x"})
		if got := c.Get(req, "twofold_session"); got != "v" {
			t.Errorf("%s: Get = %q", tc.issuer, got)
		}
	}
}

func TestClientIP(t *testing.T) {
	trusted := ClientIP{Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	cases := []struct {
		name, remote, xff string
		c                 ClientIP
		want              string
	}{
		{"direct", "192.0.2.7:1234", "", trusted, "192.0.2.7"},
		{"untrusted peer's header ignored", "192.0.2.7:1234", "203.0.113.9", trusted, "192.0.2.7"},
		{"trusted proxy", "10.0.0.2:1234", "203.0.113.9", trusted, "203.0.113.9"},
		{"spoofed left-most hop ignored", "10.0.0.2:1234", "1.1.1.1, 203.0.113.9", trusted, "203.0.113.9"},
		{"chain of trusted proxies", "10.0.0.2:1234", "203.0.113.9, 10.0.0.5", trusted, "203.0.113.9"},
		{"garbage header", "10.0.0.2:1234", "not-an-ip", trusted, "10.0.0.2"},
		{"no proxies trusted", "10.0.0.2:1234", "203.0.113.9", ClientIP{}, "10.0.0.2"},
		{"ipv4-mapped ipv6", "[::ffff:192.0.2.7]:1", "", trusted, "192.0.2.7"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			if got := tc.c.Of(r); got != tc.want {
				t.Fatalf("Of = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestLoggingRecoversPanics: a panic becomes a plain 500; its cause goes to
// the log, never to the client; the access log has no query string.
func TestLoggingRecoversPanics(t *testing.T) {
	var logs bytes.Buffer
	h := Logging(slog.New(slog.NewTextHandler(&logs, nil)), nil)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("secret internal detail")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/x?code=SECRET-CODE", nil))
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "secret internal detail") {
		t.Fatalf("response %d %q", rec.Code, rec.Body.String())
	}
	if !strings.Contains(logs.String(), "secret internal detail") || strings.Contains(logs.String(), "SECRET-CODE") {
		t.Fatalf("log: %s", logs.String())
	}
	if rec.Header().Get("X-Request-Id") == "" || !strings.Contains(logs.String(), rec.Header().Get("X-Request-Id")) {
		t.Fatal("request id missing from the response or the log")
	}
}

func TestParseFormLimits(t *testing.T) {
	h := LimitBody(1024)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ParseForm(w, r) {
			w.WriteHeader(204)
		}
	}))
	for name, tc := range map[string]struct {
		body string
		want int
	}{
		"small":     {"a=1", 204},
		"too large": {"a=" + strings.Repeat("x", 2048), http.StatusRequestEntityTooLarge},
		"malformed": {"a=%zz", http.StatusBadRequest},
	} {
		t.Run(name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d", rec.Code, tc.want)
			}
		})
	}
}

func TestCrossOrigin(t *testing.T) {
	h := CrossOrigin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	for name, tc := range map[string]struct {
		method, site string
		want         int
	}{
		"same-origin post": {"POST", "same-origin", 204},
		"cross-site post":  {"POST", "cross-site", 403},
		"cross-site get":   {"GET", "cross-site", 204},
		"same-site post":   {"POST", "same-site", 403},
	} {
		t.Run(name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, "/", nil)
			req.Header.Set("Sec-Fetch-Site", tc.site)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d", rec.Code, tc.want)
			}
		})
	}
}
