package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
)

// TestOrganizationPolicyAndAudit: an owner requires 2FA for the
// organization from the console; a member without a factor is then taken
// through enrollment at sign-in; the change is in the audit log page; a
// member cannot change the policy.
func TestOrganizationPolicyAndAudit(t *testing.T) {
	s := newTestServer(t, storetest.SQLite(), nil)
	owner, member := s.createUser("boss@example.com"), s.createUser("staff@example.com")
	orgID := s.org("Policy", owner, member)
	ob := s.newBrowser()
	ob.enrollInSettings(owner)

	mb := s.newBrowser()
	mb.signInToSettings(member)
	if p := mb.post("/settings/organization/require-2fa", url.Values{"org": {orgID}, "require": {"on"}}); p.status != http.StatusForbidden && !strings.Contains(p.body, `name="password"`) {
		t.Fatalf("a member changed the policy: %d %s", p.status, p.url)
	}
	if org, _ := s.db.GetOrganization(context.Background(), orgID); org.Require2FA {
		t.Fatal("policy changed by a member")
	}

	p := ob.post("/settings/organization/require-2fa", url.Values{"org": {orgID}, "require": {"on"}})
	if !strings.Contains(p.body, "policy was saved") || !strings.Contains(p.body, `name="require" checked`) {
		t.Fatalf("after saving the policy: %d\n%.2000s", p.status, p.body)
	}
	rp := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true})
	b := s.newBrowser()
	if p := b.login(b.get(rp.authRequest().url), member.Email, member.Password); !strings.Contains(p.url.Path, "/login/enroll") {
		t.Fatalf("member not sent to enrollment under the new policy: %s", p.url)
	}
	p = ob.get(s.issuer + "/settings/audit?org=" + orgID)
	if p.status != http.StatusOK || !strings.Contains(p.body, "org.policy_changed") || !strings.Contains(p.body, "require_2fa: true") ||
		!strings.Contains(p.body, owner.Email) {
		t.Fatalf("audit page:\n%.3000s", p.body)
	}
}
