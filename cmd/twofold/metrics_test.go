package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
)

func scrape(t *testing.T, s *testServer) (int, string) {
	t.Helper()
	resp, err := http.Get(s.issuer + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMetrics: /metrics reports request latency by route template,
// security events as the audit log records them, the outbox and the pool;
// and answers only allowed networks.
func TestMetrics(t *testing.T) {
	s := newTestServer(t, storetest.SQLite(), nil)
	u := s.createUser("metrics@example.com")
	rp := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true})
	b := s.newBrowser()
	b.login(b.get(rp.authRequest().url), u.Email, "wrong-password")
	rp.signIn(s.newBrowser(), u)

	status, body := scrape(t, s)
	if status != http.StatusOK {
		t.Fatalf("/metrics from loopback: %d", status)
	}
	for _, want := range []string{
		`twofold_http_request_duration_seconds_count{method="GET",route="/oauth2/auth",status="2xx"}`,
		`twofold_http_request_duration_seconds_count{method="POST",route="/login",status="3xx"}`,
		`twofold_http_request_duration_seconds_count{method="POST",route="/oauth2/token",status="2xx"}`,
		`twofold_security_events_total{kind="login.failed",method="password"} 1`,
		`twofold_security_events_total{kind="login.succeeded",method="password"} 1`,
		`twofold_mail_outbox_pending 0`,
		`twofold_db_connections_open`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Ids in paths do not become labels: routes are templates.
	if strings.Contains(body, u.ID) {
		t.Error("/metrics contains a user id")
	}

	closed := newTestServer(t, storetest.SQLite(), func(c *Config) { c.MetricsNetworks = []string{"10.0.0.0/8"} })
	if status, _ := scrape(t, closed); status != http.StatusNotFound {
		t.Fatalf("/metrics from a network not allowed: %d", status)
	}
}
