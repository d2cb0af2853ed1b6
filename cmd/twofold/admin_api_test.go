package main

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twofold-id/twofold/admin"
	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
)

// apiAnswer is a JSON API response.
type apiAnswer struct {
	status int
	header http.Header
	body   []byte
}

// apiBody is every field the JSON API answers with.
type apiBody struct {
	Error        string `json:"error"`
	Description  string `json:"error_description"`
	Organization struct {
		ID string `json:"id"`
	} `json:"organization"`
	Members []struct {
		ID          string   `json:"id"`
		Email       string   `json:"email"`
		Role        string   `json:"role"`
		MFA         string   `json:"mfa"`
		Factors     []string `json:"factors"`
		BackupCodes int      `json:"backup_codes"`
	} `json:"members"`
	UserID        string    `json:"user_id"`
	MFA           string    `json:"mfa"`
	Email         string    `json:"email"`
	LinkExpiresAt time.Time `json:"link_expires_at"`
}

func (a apiAnswer) decode(t *testing.T) apiBody {
	t.Helper()
	var b apiBody
	if err := json.Unmarshal(a.body, &b); err != nil {
		t.Fatalf("API answered %d with %q, not JSON: %v", a.status, a.body, err)
	}
	return b
}

// api calls the JSON API with the Authorization header auth ("" for none).
func (s *testServer) api(method, path, auth string) apiAnswer {
	s.t.Helper()
	req, err := http.NewRequest(method, s.issuer+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body json.RawMessage
	decodeJSON(s.t, resp.Body, &body)
	return apiAnswer{status: resp.StatusCode, header: resp.Header, body: body}
}

// accessToken signs u in through rp in a new browser, with their
// authenticator app when app is set, and returns the access token.
func (rp *relyingParty) accessToken(u testUser, app *authenticator) string {
	rp.t.Helper()
	b := rp.s.newBrowser()
	ar := rp.authRequest()
	p := b.login(b.get(ar.url), u.Email, u.Password)
	if app != nil {
		p = b.secondFactor(p, app.next())
	}
	in := rp.exchange(rp.code(p, ar), ar)
	if slices.Contains(in.claims.AMR, "mfa") != (app != nil) {
		rp.t.Fatalf("%s signed in with amr %v", u.Email, in.claims.AMR)
	}
	return in.token.AccessToken
}

// TestAdminAPI: an owner's access token with the twofold:admin scope, from
// a sign-in with TOTP through a real relying party, lists the members and
// resets one; every refusal is JSON with the right status and changes
// nothing; the reset kills the member's own token.
func TestAdminAPI(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, backend storetest.Backend) {
		clock := movingClock()
		s := newTestServerWith(t, backend, testOptions{now: clock.now})
		ctx := context.Background()
		owner, member, bystander := s.createUser("owner@example.com"), s.createUser("member@example.com"), s.createUser("bystander@example.com")
		acme := s.org("Acme", owner, member, bystander)
		coOwner := s.createUser("co-owner@example.com") // an owner without a second factor
		s.join(acme, coOwner, store.RoleOwner)
		rival, rivalMember := s.createUser("rival@example.com"), s.createUser("rival-member@example.com")
		rivalOrg := s.org("Rival", rival, rivalMember)
		ownerApp, _ := s.newBrowser().enrollInSettings(owner)
		memberApp, _ := s.newBrowser().enrollInSettings(member)
		rivalApp, _ := s.newBrowser().enrollInSettings(rival)
		s.newBrowser().enrollInSettings(bystander)
		s.newBrowser().enrollInSettings(rivalMember)

		rp := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true, Scopes: []string{"openid", "email", "profile", "offline_access", admin.Scope}})
		plain := *rp // the same application, not asking for twofold:admin
		plainConf := *rp.conf
		plain.conf = &plainConf
		rp.conf.Scopes = append(slices.Clone(rp.conf.Scopes), admin.Scope)
		bearer := func(tok string) string { return "Bearer " + tok }
		ownerTok := bearer(rp.accessToken(owner, ownerApp))
		ownerPlainTok := bearer(plain.accessToken(owner, ownerApp))
		memberTok := bearer(rp.accessToken(member, memberApp))
		rivalTok := bearer(rp.accessToken(rival, rivalApp))
		coOwnerTok := bearer(rp.accessToken(coOwner, nil))

		members := func(org string) string { return "/api/orgs/" + org + "/members" }
		reset := func(org string, u testUser) string { return "/api/orgs/" + org + "/members/" + u.ID + "/reset-2fa" }
		get, post := http.MethodGet, http.MethodPost
		cases := []struct {
			name, method, path, auth string
			status                   int
			code                     string
		}{
			{"no token", get, members(acme), "", http.StatusUnauthorized, "invalid_token"},
			{"no token: reset", post, reset(acme, member), "", http.StatusUnauthorized, "invalid_token"},
			{"not a bearer token", get, members(acme), "Basic b3duZXI6cHc=", http.StatusUnauthorized, "invalid_token"},
			{"unknown token", post, reset(acme, member), "Bearer not-a-token", http.StatusUnauthorized, "invalid_token"},
			{"without twofold:admin", get, members(acme), ownerPlainTok, http.StatusForbidden, "insufficient_scope"},
			{"without twofold:admin: reset", post, reset(acme, member), ownerPlainTok, http.StatusForbidden, "insufficient_scope"},
			{"a member's token", get, members(acme), memberTok, http.StatusForbidden, "forbidden"},
			{"a member's token: reset a member", post, reset(acme, bystander), memberTok, http.StatusForbidden, "forbidden"},
			{"a member's token: reset the owner", post, reset(acme, owner), memberTok, http.StatusForbidden, "forbidden"},
			{"another organization's owner", get, members(acme), rivalTok, http.StatusForbidden, "forbidden"},
			{"another organization's owner: reset, member's organization", post, reset(acme, member), rivalTok, http.StatusForbidden, "forbidden"},
			{"another organization's owner: reset, own organization", post, reset(rivalOrg, member), rivalTok, http.StatusForbidden, "forbidden"},
			{"owner: another organization", get, members(rivalOrg), ownerTok, http.StatusForbidden, "forbidden"},
			{"owner: another organization's member", post, reset(rivalOrg, rivalMember), ownerTok, http.StatusForbidden, "forbidden"},
			{"owner: another organization's member, own organization", post, reset(acme, rivalMember), ownerTok, http.StatusForbidden, "forbidden"},
			{"owner: unknown organization", get, members("org-nope"), ownerTok, http.StatusForbidden, "forbidden"},
			{"owner: self", post, reset(acme, owner), ownerTok, http.StatusForbidden, "forbidden"},
			{"owner signed in without a second factor", post, reset(acme, member), coOwnerTok, http.StatusForbidden, "reauthentication_required"},
		}
		for _, c := range cases {
			a := s.api(c.method, c.path, c.auth)
			b := a.decode(t)
			if a.status != c.status || b.Error != c.code || b.Description == "" || a.header.Get("Content-Type") != "application/json" {
				t.Errorf("%s: %d %q (%q), want %d %q", c.name, a.status, b.Error, b.Description, c.status, c.code)
			}
			challenge := a.header.Get("WWW-Authenticate")
			if c.status == http.StatusUnauthorized && (!strings.HasPrefix(challenge, "Bearer ") || !strings.Contains(challenge, `error="invalid_token"`)) {
				t.Errorf("%s: WWW-Authenticate = %q", c.name, challenge)
			}
		}
		for _, u := range []testUser{owner, member, bystander, rival, rivalMember} {
			s.assertNotReset(u)
		}

		// The owner lists the members with their 2FA state.
		a := s.api(get, members(acme), ownerTok)
		list := a.decode(t)
		got := map[string]string{}
		for _, m := range list.Members {
			got[m.Email] = m.Role + " " + m.MFA
			if m.Email == member.Email && (m.ID != member.ID || !slices.Equal(m.Factors, []string{"totp"}) || m.BackupCodes != 10) {
				t.Errorf("member listed as %+v", m)
			}
		}
		want := map[string]string{owner.Email: "owner on", coOwner.Email: "owner off", member.Email: "member on", bystander.Email: "member on"}
		if a.status != http.StatusOK || list.Organization.ID != acme || !maps.Equal(got, want) || a.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("members: %d %s, got %v, want %v", a.status, a.body, got, want)
		}

		// The owner resets the member.
		a = s.api(post, reset(acme, member), ownerTok)
		res := a.decode(t)
		if a.status != http.StatusOK || res.UserID != member.ID || res.MFA != "reset_pending" || res.Email != "queued" ||
			res.LinkExpiresAt.Sub(clock.now().Add(24*time.Hour)).Abs() > time.Minute {
			t.Fatalf("reset: %d %s", a.status, a.body)
		}
		if u, _ := s.db.GetUser(ctx, member.ID); u.MFAState != store.MFAResetPending {
			t.Fatalf("member's state = %q", u.MFAState)
		}
		if _, err := s.db.GetTOTPCredential(ctx, member.ID); err == nil {
			t.Fatal("the member's authenticator app survived the reset")
		}
		if mails := s.resetMails(member); len(mails) != 1 || !mails[0].SentAt.IsZero() {
			t.Fatalf("reset emails queued: %+v", mails)
		}
		s.latestLink(member)
		if evs := s.auditOf(member, "reset.initiated"); len(evs) != 1 || evs[0].ActorID != owner.ID || evs[0].OrgID != acme {
			t.Fatalf("reset audit = %+v", evs)
		}
		// The member's own token died with the reset.
		a = s.api(get, members(acme), memberTok)
		if a.status != http.StatusUnauthorized || a.decode(t).Error != "invalid_token" || a.header.Get("WWW-Authenticate") == "" {
			t.Fatalf("the member's token after the reset: %d %s", a.status, a.body)
		}
		list = s.api(get, members(acme), ownerTok).decode(t)
		for _, m := range list.Members {
			if m.ID == member.ID && (m.MFA != "reset_pending" || len(m.Factors) != 0 || m.BackupCodes != 0) {
				t.Fatalf("member listed after the reset as %+v", m)
			}
		}

		// Eleven minutes later the owner's token still lists, but resets
		// nobody until the owner signs in again.
		clock.advance(11 * time.Minute)
		if a := s.api(get, members(acme), ownerTok); a.status != http.StatusOK {
			t.Fatalf("listing with an 11-minute-old sign-in: %d %s", a.status, a.body)
		}
		a = s.api(post, reset(acme, bystander), ownerTok)
		if a.status != http.StatusForbidden || a.decode(t).Error != "reauthentication_required" {
			t.Fatalf("reset with an 11-minute-old sign-in: %d %s", a.status, a.body)
		}
		s.assertNotReset(bystander)
	})
}
