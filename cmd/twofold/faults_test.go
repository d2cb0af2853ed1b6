package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/twofold-id/twofold/store"
)

// The database goes away while people sign in and applications ask for
// tokens, and comes back; twofold is not restarted. The workers that keep
// the traffic going are in faults_workers_test.go.

const (
	outageHold = 2 * time.Second
	// recoveryGrace is how soon after the database returns every request
	// must succeed again.
	recoveryGrace = 3 * time.Second
)

// TestDatabaseOutage keeps sign-ins (password and TOTP, through a real
// relying party), client-credentials and refresh requests going from
// several goroutines while twofold's PostgreSQL database refuses
// connections for two seconds; meanwhile it tries an enrollment, an
// owner's reset, a backup-code regeneration, a revocation, and a sign-in
// and a token for applications not cached yet. During the outage every
// answer is the 503 page or an OAuth error, never a 500, internals or a
// code without the second factor, and /readyz says 503; within seconds of
// the database's return everything works again, and nothing attempted
// during the outage was applied twice or half.
func TestDatabaseOutage(t *testing.T) {
	d := newPGDatabase(t)
	o := newOutageScene(t, d)
	w := o.startWorkers()
	defer w.stop() // no worker outlives the test, even a failed one
	w.warmUp()
	if st, body := o.s.readyz(); st != http.StatusOK {
		t.Fatalf("/readyz before the outage: %d %q", st, body)
	}

	d.cutOff()
	w.ph.set(phaseOutage)
	t.Log("database cut off")
	o.duringOutage()
	for time.Since(w.ph.since(phaseOutage)) < outageHold {
		if st, body := o.s.readyz(); st != http.StatusServiceUnavailable || body != "Service Unavailable\n" {
			t.Errorf("/readyz during the outage: %d %q", st, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	w.ph.set(phaseRestoring)
	d.restore()
	w.ph.set(phaseBack)
	t.Log("database back")
	for st, _ := o.s.readyz(); st != http.StatusOK; st, _ = o.s.readyz() {
		if time.Since(w.ph.since(phaseBack)) > recoveryGrace {
			t.Fatalf("/readyz still %d %v after the database's return", st, recoveryGrace)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("/readyz says ready %v after the database's return", time.Since(w.ph.since(phaseBack)).Round(time.Millisecond))

	w.wait()
	w.judge()
	o.checkTokens(w)
	o.afterOutage()
}

// outageScene is the server, its applications and users, and the single
// actions prepared before the outage and tried during it.
type outageScene struct {
	t          *testing.T
	d          *pgDatabase
	s          *testServer
	rp         *relyingParty
	svc        store.Client // client credentials
	svcSecret  string
	refresher  testUser
	grant      signedIn // the refresh worker's grant
	signers    [][]signInUser
	sc         *resetScene
	regen      testUser
	regenB     *browser
	oldCodes   []string
	enroller   testUser
	enrollB    *browser
	enrollApp  *authenticator
	revoker    testUser
	toRevoke   signedIn
	cold       *relyingParty // registered, never used before the outage
	coldSvc    store.Client
	coldSecret string
}

func newOutageScene(t *testing.T, d *pgDatabase) *outageScene {
	t.Helper()
	s := newTestServerWith(t, d.backend(), testOptions{})
	o := &outageScene{t: t, d: d, s: s, rp: s.newRP(store.Client{SkipConsent: true, RequirePKCE: true})}
	cc := store.Client{GrantTypes: []string{"client_credentials"}, Scopes: []string{"reports.read"}, RedirectURIs: []string{}}
	o.svc, o.svcSecret = s.createClient(cc)
	// Sign-in workers, each with its own users: a TOTP time step works
	// once per user, so each user gives a couple of sign-ins a minute.
	const signers, usersEach = 3, 3
	o.signers = make([][]signInUser, signers)
	for i := range signers {
		for j := range usersEach {
			u := s.createUser(fmt.Sprintf("signer%d-%d@example.com", i, j))
			app, _ := s.newBrowser().enrollInSettings(u)
			o.signers[i] = append(o.signers[i], signInUser{u, app})
		}
	}
	o.refresher, o.revoker = s.createUser("refresher@example.com"), s.createUser("revoker@example.com")
	o.grant, o.toRevoke = o.rp.signIn(s.newBrowser(), o.refresher), o.rp.signIn(s.newBrowser(), o.revoker)
	o.sc = s.resetScene(nil)
	o.regen, o.regenB = s.createUser("regen@example.com"), s.newBrowser()
	_, o.oldCodes = o.regenB.enrollInSettings(o.regen)
	o.enroller, o.enrollB = s.createUser("enroller@example.com"), s.newBrowser()
	o.enrollB.signInToSettings(o.enroller)
	o.enrollApp = enrollSecret(t, o.enrollB.get(s.issuer+"/settings/security/totp"))
	o.cold = s.newRP(store.Client{SkipConsent: true, RequirePKCE: true})
	o.coldSvc, o.coldSecret = s.createClient(cc)
	return o
}

// refresh redeems a refresh token of the scene's application.
func (o *outageScene) refresh(token string) (int, map[string]any, error) {
	return tokenCall(o.s.issuer, o.rp.conf.ClientID, o.rp.conf.ClientSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}})
}

// duringOutage tries what must then fail cleanly: confirming a TOTP
// enrollment, an owner's reset, regenerating backup codes, revoking a
// refresh token, signing in at and getting a token for an application
// whose registration is not cached (the answer is the same 503, not "this
// application does not exist" or "bad client credentials").
func (o *outageScene) duringOutage() {
	t, s := o.t, o.s
	t.Helper()
	assertUnavailablePage(t, o.enrollB.post("/settings/security/totp", url1("code", o.enrollApp.next())))
	assertUnavailablePage(t, o.sc.ownerB.post("/settings/members/"+o.sc.member.ID+"/reset", url1("org", o.sc.org)))
	assertUnavailablePage(t, o.regenB.post("/settings/security/backup-codes", nil))
	resp, body := o.rp.postForm("/oauth2/revoke", url.Values{"token": {o.toRevoke.token.RefreshToken}, "token_type_hint": {"refresh_token"}})
	if resp.StatusCode != http.StatusServiceUnavailable || body["error"] != "temporarily_unavailable" {
		// RFC 7009 §2.2.1: with 503 the client knows the token may live on.
		t.Errorf("revocation during the outage: %d %v, want 503 temporarily_unavailable", resp.StatusCode, body)
	}
	assertUnavailablePage(t, s.newBrowser().get(o.cold.authRequest().url))
	st, body, err := tokenCall(s.issuer, o.coldSvc.ID, o.coldSecret, url.Values{"grant_type": {"client_credentials"}})
	if err != nil || st != http.StatusServiceUnavailable || body["error"] != "temporarily_unavailable" {
		t.Errorf("client credentials of an uncached client during the outage: %d %v %v, want 503 temporarily_unavailable", st, body, err)
	}
}

// checkTokens: the store holds exactly the tokens the successful answers
// gave, none applied twice or half.
func (o *outageScene) checkTokens(w *workers) {
	t, d := o.t, o.d
	t.Helper()
	requestID := d.queryText(`SELECT request_id FROM oauth2_sessions WHERE kind = 'refresh' AND subject = $1 LIMIT 1`, o.refresher.ID)
	if n := d.query(`SELECT count(*) FROM oauth2_sessions WHERE kind = 'refresh' AND request_id = $1 AND NOT active`, requestID); n != w.rotated {
		t.Errorf("%d refresh rotations in the store, %d successful refresh answers", n, w.rotated)
	}
	if n := d.query(`SELECT count(*) FROM oauth2_sessions WHERE kind = 'refresh' AND request_id = $1 AND active`, requestID); n != 1 {
		t.Errorf("%d live refresh tokens in the grant, want 1", n)
	}
	if n := d.query(`SELECT count(*) FROM oauth2_sessions WHERE kind = 'access' AND request_id = $1`, requestID); n != 1 {
		t.Errorf("%d access tokens in the refreshed grant, want the newest only", n)
	}
	if n := d.query(`SELECT count(*) FROM oauth2_sessions WHERE kind = 'access' AND client_id = $1`, o.svc.ID); n != w.ccTokens {
		t.Errorf("%d client-credentials tokens in the store, %d successful answers", n, w.ccTokens)
	}
	if st, body, err := o.refresh(w.refreshToken); err != nil || st != http.StatusOK {
		t.Errorf("the newest refresh token after the outage: %d %v %v", st, body, err)
	}
}

// afterOutage checks that what duringOutage tried left no trace, and that
// each works now.
func (o *outageScene) afterOutage() {
	t, s := o.t, o.s
	t.Helper()
	ctx := context.Background()
	// The enrollment: nothing of it, then it goes through.
	if _, err := s.db.GetTOTPCredential(ctx, o.enroller.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an enrollment confirmed during the outage left a credential: %v", err)
	}
	if n, err := s.db.CountBackupCodes(ctx, o.enroller.ID); err != nil || n != 0 {
		t.Errorf("an enrollment confirmed during the outage left %d backup codes (%v)", n, err)
	}
	if evs := s.auditOf(o.enroller, "factor.enrolled"); len(evs) != 0 {
		t.Errorf("an enrollment confirmed during the outage was audited")
	}
	backupCodes(t, o.enrollB.post("/settings/security/totp", url1("code", o.enrollApp.next())))
	// The reset: nothing of it, then it goes through once.
	s.assertNotReset(o.sc.member)
	o.sc.reset()
	if n := len(s.resetMails(o.sc.member)); n != 1 {
		t.Errorf("%d reset emails, want 1", n)
	}
	// The regeneration: the old codes still stand.
	if evs := s.auditOf(o.regen, "backup_codes.regenerated"); len(evs) != 0 {
		t.Errorf("a regeneration during the outage was audited")
	}
	s.signInWithCode(o.regen, o.oldCodes[0])
	// The revocation: the token still works, and now it can be revoked.
	st, body, err := o.refresh(o.toRevoke.token.RefreshToken)
	if err != nil || st != http.StatusOK {
		t.Fatalf("the refresh token whose revocation failed in the outage: %d %v %v", st, body, err)
	}
	next, _ := body["refresh_token"].(string)
	if resp, _ := o.rp.postForm("/oauth2/revoke", url.Values{"token": {next}}); resp.StatusCode != http.StatusOK {
		t.Errorf("revocation after the outage: %d", resp.StatusCode)
	}
	if st, _, _ := o.refresh(next); st != http.StatusBadRequest {
		t.Errorf("a revoked refresh token: %d", st)
	}
	// The applications not cached before work now.
	o.cold.signIn(s.newBrowser(), o.revoker)
	if st, body, err := tokenCall(s.issuer, o.coldSvc.ID, o.coldSecret, url.Values{"grant_type": {"client_credentials"}}); err != nil || st != http.StatusOK {
		t.Errorf("client credentials of the formerly uncached client: %d %v %v", st, body, err)
	}
}
