package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twofold-id/twofold/store"
)

// Run runs the conformance suite against fresh stores from open.
func Run(t *testing.T, open func(t testing.TB) *store.DB) {
	tests := []struct {
		name string
		fn   func(t *testing.T, db *store.DB)
	}{
		{"MigrateTwiceIsNoop", testMigrateTwice},
		{"Users", testUsers},
		{"Organizations", testOrganizations},
		{"Clients", testClients},
		{"AuthorizeCodeSingleUse", testAuthorizeCode},
		{"AuthorizeCodeConcurrentRedemption", testAuthorizeCodeConcurrent},
		{"AccessTokens", testAccessTokens},
		{"RefreshRotation", testRefreshRotation},
		{"RefreshConcurrentRotation", testRefreshConcurrent},
		{"RevokeByRequestID", testRevokeByRequest},
		{"RevokeUserTokens", testRevokeUserTokens},
		{"TokensHeldByUser", testTokensHeldByUser},
		{"TokensWaitForReset", testTokensWaitForReset},
		{"CodeCompanions", testCodeCompanions},
		{"CodeReads", testCodeReads},
		{"CodeBatch", testCodeBatch},
		{"Transactions", testTransactions},
		{"LoginFlows", testLoginFlows},
		{"LoginFlowConcurrentConsume", testLoginFlowConcurrent},
		{"DeleteUserLoginFlows", testDeleteUserLoginFlows},
		{"BrowserSessions", testBrowserSessions},
		{"ConsentGrants", testConsentGrants},
		{"SigningKeys", testSigningKeys},
		{"Audit", testAudit},
		{"TOTPEnrollment", testTOTPEnrollment},
		{"TOTPSteps", testTOTPSteps},
		{"BackupCodes", testBackupCodes},
		{"OrgPolicyAndFlowLimit", testOrgPolicyAndFlowLimit},
		{"FactorSummary", testFactorSummary},
		{"WebAuthnCredentials", testWebAuthnCredentials},
		{"WebAuthnCeremonies", testWebAuthnCeremonies},
		{"ResetTokens", testResetTokens},
		{"ConcurrentResets", testConcurrentResets},
		{"OrgMembers", testOrgMembers},
		{"RateLimit", testRateLimit},
		{"RateLimitLockout", testRateLimitLockout},
		{"RateLimitConcurrent", testRateLimitConcurrent},
		{"RateLimitConcurrentKeys", testRateLimitConcurrentKeys},
		{"RateLimitModel", testRateLimitModel},
		{"Outbox", testOutbox},
		{"OutboxOrder", testOutboxOrder},
		{"OutboxLeaseExpiry", testOutboxLeaseExpiry},
		{"OutboxGiveUp", testOutboxGiveUp},
		{"OutboxClaimHoldsNoLock", testOutboxClaimHoldsNoLock},
		{"OutboxConcurrentClaimOne", testOutboxConcurrentClaimOne},
		{"OutboxConcurrentWorkers", testOutboxConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

// RunRateLimits runs the rate-limit tests alone, for a store made to take
// another path through them (store's read-then-write or locked paths).
func RunRateLimits(t *testing.T, open func(t testing.TB) *store.DB) {
	for name, fn := range map[string]func(*testing.T, *store.DB){
		"RateLimit": testRateLimit, "RateLimitLockout": testRateLimitLockout,
		"RateLimitConcurrent": testRateLimitConcurrent, "RateLimitConcurrentKeys": testRateLimitConcurrentKeys, "RateLimitModel": testRateLimitModel,
	} {
		t.Run(name, func(t *testing.T) { fn(t, open(t)) })
	}
}

// t0 is the suite's fixed clock.
var t0 = time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC)

var ctx = context.Background()

func newUser(t *testing.T, db *store.DB, email string) store.User {
	t.Helper()
	u := store.User{ID: "u-" + email, Email: email, Name: "Name " + email, PasswordHash: "$argon2id$x", CreatedAt: t0}
	must(t, db.CreateUser(ctx, u), "create user %s", email)
	u.MFAState = store.MFANone
	return u
}

func testMigrateTwice(t *testing.T, db *store.DB) {
	applied, err := db.Migrate(ctx)
	must(t, err, "migrate again")
	if len(applied) != 0 {
		t.Fatalf("second migrate applied %v, want nothing", applied)
	}
}

func testUsers(t *testing.T, db *store.DB) {
	u := newUser(t, db, "ada@example.com")
	got, err := db.GetUser(ctx, u.ID)
	must(t, err, "get user")
	if got.Email != u.Email || got.Name != u.Name || got.PasswordHash != u.PasswordHash ||
		got.MFAState != store.MFANone || !got.CreatedAt.Equal(t0.Truncate(time.Microsecond)) || !got.LastLoginAt.IsZero() {
		t.Fatalf("get user = %+v, want %+v", got, u)
	}
	byEmail, err := db.GetUserByEmail(ctx, "  ADA@Example.com ")
	must(t, err, "get user by email")
	if byEmail.ID != u.ID {
		t.Fatalf("by email got %s, want %s", byEmail.ID, u.ID)
	}
	dup := store.User{ID: "other", Email: "Ada@example.com", PasswordHash: "x", CreatedAt: t0}
	if err := db.CreateUser(ctx, dup); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate email: err = %v, want ErrConflict", err)
	}
	if _, err := db.GetUser(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing user: err = %v, want ErrNotFound", err)
	}
	must(t, db.RecordLogin(ctx, loginEvent(u.ID, t0.Add(time.Hour))), "record login")
	must(t, db.SetUserPassword(ctx, u.ID, "$argon2id$y"), "set password")
	got, err = db.GetUser(ctx, u.ID)
	must(t, err, "get user")
	if !got.LastLoginAt.Equal(t0.Add(time.Hour).Truncate(time.Microsecond)) || got.PasswordHash != "$argon2id$y" {
		t.Fatalf("after login and password change: %+v", got)
	}
	// The sign-in's audit event is written with it; a sign-in of a user
	// who is gone writes neither.
	logins, err := db.ListAudit(ctx, store.AuditFilter{TargetID: u.ID, Kind: "login.succeeded"})
	must(t, err, "list logins")
	if len(logins) != 1 || !logins[0].At.Equal(t0.Add(time.Hour)) || logins[0].ActorID != u.ID ||
		logins[0].ClientAddr != "192.0.2.7" || logins[0].Details["method"] != "password+totp" {
		t.Fatalf("login events = %+v", logins)
	}
	if err := db.RecordLogin(ctx, loginEvent("missing", t0)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("record login of missing user: %v", err)
	}
	if gone, err := db.ListAudit(ctx, store.AuditFilter{TargetID: "missing"}); err != nil || len(gone) != 0 {
		t.Fatalf("events of a missing user's login = %+v, %v", gone, err)
	}
	if err := db.SetUserPassword(ctx, "missing", "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("set password of missing user: %v", err)
	}
}

func testOrganizations(t *testing.T, db *store.DB) {
	owner := newUser(t, db, "owner@example.com")
	member := newUser(t, db, "member@example.com")
	org := store.Organization{ID: "o1", Name: "Acme", Require2FA: true, CreatedAt: t0}
	must(t, db.CreateOrganization(ctx, org), "create org")
	if err := db.CreateOrganization(ctx, store.Organization{ID: "o2", Name: "Acme", CreatedAt: t0}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate org name: %v", err)
	}
	got, err := db.GetOrganizationByName(ctx, "Acme")
	must(t, err, "get org by name")
	if got.ID != "o1" || !got.Require2FA {
		t.Fatalf("org = %+v", got)
	}
	must(t, db.PutMembership(ctx, store.Membership{OrgID: "o1", UserID: owner.ID, Role: store.RoleOwner, CreatedAt: t0}), "owner")
	must(t, db.PutMembership(ctx, store.Membership{OrgID: "o1", UserID: member.ID, Role: store.RoleMember, CreatedAt: t0}), "member")
	// Putting again changes the role, not the count.
	must(t, db.PutMembership(ctx, store.Membership{OrgID: "o1", UserID: member.ID, Role: store.RoleOwner, CreatedAt: t0}), "promote")
	ms, err := db.ListUserMemberships(ctx, member.ID)
	must(t, err, "list memberships")
	if len(ms) != 1 || ms[0].Role != store.RoleOwner || ms[0].OrgID != "o1" {
		t.Fatalf("memberships = %+v", ms)
	}
}

func testClients(t *testing.T, db *store.DB) {
	c := store.Client{
		ID: "app", SecretHash: []byte{1, 2, 3}, Name: "App",
		RedirectURIs: []string{"https://app.example/cb", "http://127.0.0.1:9/cb"}, PostLogoutRedirectURIs: []string{"https://app.example/"},
		GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid", "email"},
		SkipConsent: true, RequirePKCE: true, CreatedAt: t0,
	}
	must(t, db.CreateClient(ctx, c), "create client")
	if err := db.CreateClient(ctx, c); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate client: %v", err)
	}
	got, err := db.GetOAuthClient(ctx, "app")
	must(t, err, "get client")
	if got.Name != "App" || !slices.Equal(got.RedirectURIs, c.RedirectURIs) || !slices.Equal(got.PostLogoutRedirectURIs, c.PostLogoutRedirectURIs) ||
		!slices.Equal(got.GrantTypes, c.GrantTypes) || !slices.Equal(got.Scopes, c.Scopes) || string(got.SecretHash) != "\x01\x02\x03" ||
		got.Public || !got.SkipConsent || !got.RequirePKCE || got.Require2FA || got.IDTokenAlg != store.AlgRS256 {
		t.Fatalf("client = %+v", got)
	}
	if _, err := db.GetOAuthClient(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing client: %v", err)
	}
	all, err := db.ListClients(ctx)
	must(t, err, "list clients")
	if len(all) != 1 {
		t.Fatalf("list clients = %d", len(all))
	}
	got.IDTokenAlg = store.AlgES256
	must(t, db.UpdateClient(ctx, *got), "update client")
	if got, err = db.GetOAuthClient(ctx, "app"); err != nil || got.IDTokenAlg != store.AlgES256 {
		t.Fatalf("after choosing ES256: %+v, %v", got, err)
	}
}

// concurrently runs fn n times at once and returns how many returned nil.
func concurrently(n int, fn func(i int) error) (ok int, errs []error) {
	var wg sync.WaitGroup
	var successes atomic.Int32
	var mu sync.Mutex
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if err := fn(i); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			successes.Add(1)
		}()
	}
	close(start)
	wg.Wait()
	return int(successes.Load()), errs
}

func testAudit(t *testing.T, db *store.DB) {
	for i, kind := range []string{"login.failed", "factor.added", "login.failed"} {
		must(t, db.AppendAudit(ctx, store.AuditEvent{At: t0.Add(time.Duration(i) * time.Second), Kind: kind,
			ActorID: "a", TargetID: fmt.Sprintf("u%d", i%2), OrgID: "o1", ClientAddr: "192.0.2.1",
			Details: map[string]string{"n": fmt.Sprint(i)}}), "append")
	}
	all, err := db.ListAudit(ctx, store.AuditFilter{OrgID: "o1"})
	must(t, err, "list")
	if len(all) != 3 || all[0].Details["n"] != "2" || all[2].Kind != "login.failed" {
		t.Fatalf("audit newest first = %+v", all)
	}
	u0, err := db.ListAudit(ctx, store.AuditFilter{TargetID: "u0", Kind: "login.failed"})
	must(t, err, "list filtered")
	if len(u0) != 2 {
		t.Fatalf("filtered = %d events, want 2", len(u0))
	}
	none, err := db.ListAudit(ctx, store.AuditFilter{OrgID: "other"})
	must(t, err, "list other org")
	if len(none) != 0 {
		t.Fatalf("other org sees %d events", len(none))
	}
}

// loginEvent is the audit event of userID's sign-in at at.
func loginEvent(userID string, at time.Time) store.AuditEvent {
	return store.AuditEvent{At: at, Kind: "login.succeeded", ActorID: userID, TargetID: userID,
		ClientAddr: "192.0.2.7", Details: map[string]string{"method": "password+totp"}}
}
