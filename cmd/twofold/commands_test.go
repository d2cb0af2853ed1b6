package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twofold-id/twofold/password"
	"github.com/twofold-id/twofold/provider"
	"github.com/twofold-id/twofold/seal"
	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
)

// cli runs twofold's commands through run, as the binary would, against
// one fresh database.
type cli struct {
	t    *testing.T
	url  string
	key  []byte
	vars map[string]string
	db   *store.DB // opened on first use, after a command created the schema
}

func newCLI(t *testing.T, b storetest.Backend) *cli {
	t.Helper()
	c := &cli{t: t, url: b.URL(t), key: randomKey(32)}
	c.vars = map[string]string{
		"TWOFOLD_DATABASE_URL": c.url,
		"TWOFOLD_SECRET_KEY":   base64.StdEncoding.EncodeToString(c.key),
		"TWOFOLD_DATA_DIR":     t.TempDir(),
	}
	return c
}

// run runs one command line with stdin and returns what it printed.
func (c *cli) run(stdin string, args ...string) (stdout, stderr string, err error) {
	c.t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, strings.NewReader(stdin), &out, &errOut, envMap(c.vars))
	return out.String(), errOut.String(), err
}

// ok runs a command that must succeed and print one JSON object.
func (c *cli) ok(stdin string, args ...string) map[string]any {
	c.t.Helper()
	out, errOut, err := c.run(stdin, args...)
	if err != nil {
		c.t.Fatalf("twofold %s: %v\nstderr:\n%s", strings.Join(args, " "), err, errOut)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		c.t.Fatalf("twofold %s printed %q, not a JSON object: %v", strings.Join(args, " "), out, err)
	}
	return v
}

// fails runs a command that must fail and returns its error.
func (c *cli) fails(stdin string, args ...string) error {
	c.t.Helper()
	out, _, err := c.run(stdin, args...)
	if err == nil {
		c.t.Fatalf("twofold %s succeeded, printing %q; want an error", strings.Join(args, " "), out)
	}
	if out != "" {
		c.t.Errorf("twofold %s failed but printed %q", strings.Join(args, " "), out)
	}
	return err
}

// store opens the database the commands use.
func (c *cli) store() *store.DB {
	c.t.Helper()
	if c.db == nil {
		c.db = storetest.OpenURL(c.t, c.url)
	}
	return c.db
}

// createUser creates a user through the command and returns its id.
func (c *cli) createUser(email, pw string) string {
	c.t.Helper()
	out := c.ok(pw+"\n", "users", "create", "--email", email, "--password-stdin")
	id, _ := out["id"].(string)
	if id == "" {
		c.t.Fatalf("users create printed no id: %v", out)
	}
	return id
}

func assertUsage(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, errUsage) {
		t.Fatalf("error = %v, want a usage error", err)
	}
}

func TestCLIUsersCreate(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		c := newCLI(t, b)
		ctx := context.Background()

		// The password is the first line of stdin, without its line ending.
		out := c.ok("correct horse battery\r\nsecond line\n", "users", "create", "--email", "Ada@Example.COM", "--name", "Ada Lovelace", "--password-stdin")
		id, _ := out["id"].(string)
		if id == "" || out["email"] != "ada@example.com" {
			t.Fatalf("users create printed %v, want an id and the normalized email", out)
		}
		u, err := c.store().GetUserByEmail(ctx, "ada@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if u.ID != id || u.Name != "Ada Lovelace" || u.MFAState != store.MFANone {
			t.Fatalf("stored user = %+v", u)
		}
		hasher := password.New(password.DefaultParams, 1)
		if err := hasher.Verify(ctx, u.PasswordHash, "correct horse battery"); err != nil {
			t.Fatalf("the password read from stdin does not verify: %v", err)
		}
		if err := hasher.Verify(ctx, u.PasswordHash, "correct horse battery\r"); err == nil {
			t.Fatal("the line ending became part of the password")
		}

		err = c.fails("another password\n", "users", "create", "--email", "ADA@example.com", "--password-stdin")
		if errors.Is(err, errUsage) || !strings.Contains(err.Error(), "a user with email ada@example.com already exists") {
			t.Fatalf("duplicate email: error = %v, want a plain 'already exists'", err)
		}

		refusals := []struct {
			name    string
			stdin   string
			args    []string
			usage   bool
			wantErr string
		}{
			{"missing --password-stdin", "long enough password\n", []string{"--email", "bob@example.com"}, true, "--password-stdin"},
			{"missing --email", "long enough password\n", []string{"--password-stdin"}, true, "--email"},
			{"email without @", "long enough password\n", []string{"--email", "bob.example.com", "--password-stdin"}, true, "valid address"},
			{"email with a space", "long enough password\n", []string{"--email", "bob @example.com", "--password-stdin"}, true, "valid address"},
			{"email with two @", "long enough password\n", []string{"--email", "bob@x@example.com", "--password-stdin"}, true, "valid address"},
			{"unknown flag", "long enough password\n", []string{"--email", "bob@example.com", "--password", "x"}, true, ""},
			{"positional argument", "long enough password\n", []string{"--email", "bob@example.com", "--password-stdin", "extra"}, true, ""},
			{"short password", "seven77\n", []string{"--email", "bob@example.com", "--password-stdin"}, false, "at least 8 characters"},
			{"empty stdin", "", []string{"--email", "bob@example.com", "--password-stdin"}, false, "at least 8 characters"},
			{"password too long", strings.Repeat("x", password.MaxLen+1), []string{"--email", "bob@example.com", "--password-stdin"}, false, "at most"},
		}
		for _, tt := range refusals {
			t.Run(tt.name, func(t *testing.T) {
				err := c.fails(tt.stdin, append([]string{"users", "create"}, tt.args...)...)
				if errors.Is(err, errUsage) != tt.usage {
					t.Errorf("error = %v, usage error %v, want %v", err, !tt.usage, tt.usage)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error = %v, want it to mention %q", err, tt.wantErr)
				}
				if _, err := c.store().GetUserByEmail(ctx, "bob@example.com"); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("refused command created a user (lookup: %v)", err)
				}
			})
		}
	})
}

func TestCLIOrgs(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		c := newCLI(t, b)
		ctx := context.Background()
		ownerID := c.createUser("owner@example.com", "owner password")
		memberID := c.createUser("member@example.com", "member password")

		out := c.ok("", "orgs", "create", "--name", "Acme", "--owner", "OWNER@example.com", "--require-2fa")
		orgID, _ := out["id"].(string)
		if orgID == "" || out["name"] != "Acme" || out["require_2fa"] != true {
			t.Fatalf("orgs create printed %v", out)
		}
		org, err := c.store().GetOrganizationByName(ctx, "Acme")
		if err != nil {
			t.Fatal(err)
		}
		if org.ID != orgID || !org.Require2FA {
			t.Fatalf("stored organization = %+v, want id %s with 2FA required", org, orgID)
		}
		assertRole(t, c.store(), ownerID, orgID, store.RoleOwner)

		plain := c.ok("", "orgs", "create", "--name", "Plain", "--owner", "owner@example.com")
		if plain["require_2fa"] != false {
			t.Fatalf("orgs create without --require-2fa printed %v", plain)
		}

		err = c.fails("", "orgs", "create", "--name", "Acme", "--owner", "member@example.com")
		if !strings.Contains(err.Error(), `an organization named "Acme" already exists`) {
			t.Fatalf("duplicate name: error = %v", err)
		}
		if ms := memberships(t, c.store(), memberID); len(ms) != 0 {
			t.Fatalf("the refused duplicate left memberships: %+v", ms)
		}

		err = c.fails("", "orgs", "create", "--name", "Ghost Org", "--owner", "nobody@example.com")
		if !strings.Contains(err.Error(), "nobody@example.com") || !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown owner: error = %v, want it to name the owner and wrap ErrNotFound", err)
		}
		if _, err := c.store().GetOrganizationByName(ctx, "Ghost Org"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("an unknown owner still created the organization (lookup: %v)", err)
		}

		assertUsage(t, c.fails("", "orgs", "create", "--name", "No Owner"))
		assertUsage(t, c.fails("", "orgs", "create", "--name", "  ", "--owner", "owner@example.com"))
		assertUsage(t, c.fails("", "orgs", "create", "--owner", "owner@example.com"))

		// add-member: the default role is member; running it again with
		// --role changes the role rather than adding a second membership.
		out = c.ok("", "orgs", "add-member", "--org", "Acme", "--email", "member@example.com")
		if out["org_id"] != orgID || out["user_id"] != memberID || out["role"] != "member" {
			t.Fatalf("orgs add-member printed %v", out)
		}
		assertRole(t, c.store(), memberID, orgID, store.RoleMember)
		c.ok("", "orgs", "add-member", "--org", "Acme", "--email", "member@example.com", "--role", "owner")
		assertRole(t, c.store(), memberID, orgID, store.RoleOwner)
		c.ok("", "orgs", "add-member", "--org", "Acme", "--email", "member@example.com", "--role", "member")
		assertRole(t, c.store(), memberID, orgID, store.RoleMember)

		refusals := []struct {
			name    string
			args    []string
			usage   bool
			wantErr string
		}{
			{"bad role", []string{"--org", "Acme", "--email", "member@example.com", "--role", "admin"}, true, "--role"},
			{"empty role", []string{"--org", "Acme", "--email", "member@example.com", "--role", ""}, true, "--role"},
			{"missing org", []string{"--email", "member@example.com"}, true, "--org"},
			{"missing email", []string{"--org", "Acme"}, true, "--email"},
			{"unknown org", []string{"--org", "Nope", "--email", "member@example.com", "--role", "owner"}, false, `organization "Nope"`},
			{"unknown user", []string{"--org", "Acme", "--email", "nobody@example.com"}, false, "nobody@example.com"},
		}
		for _, tt := range refusals {
			t.Run(tt.name, func(t *testing.T) {
				err := c.fails("", append([]string{"orgs", "add-member"}, tt.args...)...)
				if errors.Is(err, errUsage) != tt.usage || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error = %v; want usage error %v mentioning %q", err, tt.usage, tt.wantErr)
				}
				assertRole(t, c.store(), memberID, orgID, store.RoleMember)
			})
		}
	})
}

func memberships(t *testing.T, db *store.DB, userID string) []store.Membership {
	t.Helper()
	ms, err := db.ListUserMemberships(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// assertRole checks that userID is in orgID with role, exactly once.
func assertRole(t *testing.T, db *store.DB, userID, orgID string, role store.Role) {
	t.Helper()
	var found []store.Membership
	for _, m := range memberships(t, db, userID) {
		if m.OrgID == orgID {
			found = append(found, m)
		}
	}
	if len(found) != 1 || found[0].Role != role {
		t.Fatalf("memberships of %s in %s = %+v, want one with role %s", userID, orgID, found, role)
	}
}

func TestCLIClientsCreate(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		c := newCLI(t, b)
		ctx := context.Background()
		sealer, err := seal.New(c.key, nil)
		if err != nil {
			t.Fatal(err)
		}

		t.Run("confidential", func(t *testing.T) {
			out := c.ok("", "clients", "create", "--name", " Billing ",
				"--redirect-uri", "https://billing.example.com/callback", "--redirect-uri", "http://127.0.0.1:5556/callback",
				"--post-logout-redirect-uri", "https://billing.example.com/",
				"--skip-consent", "--scopes", "openid email", "--grant-types", "authorization_code, client_credentials", "--require-2fa",
				"--id-token-alg", "ES256")
			id, _ := out["client_id"].(string)
			secret, _ := out["client_secret"].(string)
			if id == "" || len(secret) < 43 || out["public"] != false || out["name"] != "Billing" {
				t.Fatalf("clients create printed %v, want a client_id and a 256-bit client_secret", out)
			}
			got, err := c.store().GetOAuthClient(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			want := store.Client{ID: id, Name: "Billing",
				RedirectURIs:           []string{"https://billing.example.com/callback", "http://127.0.0.1:5556/callback"},
				PostLogoutRedirectURIs: []string{"https://billing.example.com/"},
				GrantTypes:             []string{"authorization_code", "client_credentials"}, Scopes: []string{"openid", "email"},
				SkipConsent: true, RequirePKCE: true, Require2FA: true, IDTokenAlg: store.AlgES256}
			assertClient(t, got, want)
			if !seal.Equal(got.SecretHash, provider.HashClientSecret(sealer, secret)) {
				t.Fatal("the stored secret hash does not match the printed client_secret")
			}
			if strings.Contains(string(got.SecretHash), secret) {
				t.Fatal("the client secret is stored in plain text")
			}
		})

		t.Run("public with defaults", func(t *testing.T) {
			out := c.ok("", "clients", "create", "--name", "CLI", "--public", "--redirect-uri", "http://[::1]/cb", "--id", "my-cli")
			if _, has := out["client_secret"]; has || out["client_id"] != "my-cli" || out["public"] != true {
				t.Fatalf("public client printed %v, want client_id my-cli and no client_secret", out)
			}
			got, err := c.store().GetOAuthClient(ctx, "my-cli")
			if err != nil {
				t.Fatal(err)
			}
			assertClient(t, got, store.Client{ID: "my-cli", Name: "CLI", Public: true, RequirePKCE: true,
				RedirectURIs: []string{"http://[::1]/cb"}, GrantTypes: []string{"authorization_code", "refresh_token"},
				Scopes: []string{"openid", "email", "profile", "offline_access"}})
			if len(got.SecretHash) != 0 {
				t.Fatalf("public client has a secret hash %x", got.SecretHash)
			}

			err = c.fails("", "clients", "create", "--name", "Other", "--public", "--redirect-uri", "http://localhost/cb", "--id", "my-cli")
			if !strings.Contains(err.Error(), `a client with id "my-cli" already exists`) {
				t.Fatalf("duplicate id: error = %v", err)
			}
		})

		t.Run("legacy client without PKCE", func(t *testing.T) {
			out := c.ok("", "clients", "create", "--name", "Legacy", "--redirect-uri", "https://legacy.example.com/cb", "--no-pkce")
			got, err := c.store().GetOAuthClient(ctx, out["client_id"].(string))
			if err != nil {
				t.Fatal(err)
			}
			if got.RequirePKCE {
				t.Fatal("--no-pkce still requires PKCE")
			}
		})

		t.Run("service client without redirect", func(t *testing.T) {
			out := c.ok("", "clients", "create", "--name", "Batch", "--grant-types", "client_credentials", "--scopes", "")
			if out["client_secret"] == nil {
				t.Fatalf("printed %v, want a client_secret", out)
			}
		})

		before, err := c.store().ListClients(ctx)
		if err != nil {
			t.Fatal(err)
		}
		refusals := []struct {
			name string
			args []string
			want []string
		}{
			{"http for a public host", []string{"--name", "A", "--redirect-uri", "http://app.example.com/cb"}, []string{"must be https"}},
			{"http for a look-alike of localhost", []string{"--name", "A", "--redirect-uri", "http://localhost.example.com/cb"}, []string{"must be https"}},
			{"fragment", []string{"--name", "A", "--redirect-uri", "https://app.example.com/cb#x"}, []string{"no fragment"}},
			{"relative", []string{"--name", "A", "--redirect-uri", "/cb"}, []string{"must be absolute"}},
			{"https without host", []string{"--name", "A", "--redirect-uri", "https:///cb"}, []string{"has no host"}},
			{"javascript scheme", []string{"--name", "A", "--redirect-uri", "javascript:alert(1)"}, []string{"forbidden scheme"}},
			{"empty fragment", []string{"--name", "A", "--redirect-uri", "https://app.example.com/cb#"}, []string{"no fragment"}},
			{"bare custom scheme", []string{"--name", "A", "--redirect-uri", "myapp:/cb"}, []string{"reverse-DNS"}},
			{"bad post-logout URI", []string{"--name", "A", "--redirect-uri", "https://app.example.com/cb", "--post-logout-redirect-uri", "http://app.example.com/"}, []string{"must be https"}},
			{"unknown grant type", []string{"--name", "A", "--redirect-uri", "https://app.example.com/cb", "--grant-types", "authorization_code,implicit"}, []string{`grant type "implicit" is not one of`}},
			{"password grant", []string{"--name", "A", "--grant-types", "password"}, []string{`grant type "password"`}},
			{"no grant type", []string{"--name", "A", "--grant-types", " , "}, []string{"at least one grant type"}},
			{"public client_credentials", []string{"--name", "A", "--public", "--grant-types", "client_credentials"}, []string{"public client cannot use client_credentials"}},
			{"public without PKCE", []string{"--name", "A", "--public", "--redirect-uri", "http://127.0.0.1/cb", "--no-pkce"}, []string{"--no-pkce is not allowed"}},
			{"missing redirect", []string{"--name", "A"}, []string{"--redirect-uri is required for authorization_code"}},
			{"missing name", []string{"--redirect-uri", "https://app.example.com/cb"}, []string{"--name is required"}},
			{"unknown ID token algorithm", []string{"--name", "A", "--redirect-uri", "https://app.example.com/cb", "--id-token-alg", "HS256"}, []string{`--id-token-alg "HS256": want RS256 or ES256`}},
			{"every problem at once", []string{"--public", "--no-pkce", "--grant-types", "authorization_code,client_credentials,device_code",
				"--post-logout-redirect-uri", "https://app.example.com/#bye", "--name", " "},
				[]string{"--name is required", `grant type "device_code"`, "--redirect-uri is required",
					"public client cannot use client_credentials", "--no-pkce is not allowed", "no fragment"}},
			{"every redirect URI is checked", []string{"--name", "A", "--redirect-uri", "http://a.example.com/cb", "--redirect-uri", "https://b.example.com/cb#f"},
				[]string{`"http://a.example.com/cb" must be https`, `"https://b.example.com/cb#f" must be absolute and have no fragment`}},
		}
		for _, tt := range refusals {
			t.Run(tt.name, func(t *testing.T) {
				err := c.fails("", append([]string{"clients", "create"}, tt.args...)...)
				assertUsage(t, err)
				assertErrorMentions(t, err, tt.want...)
			})
		}
		after, err := c.store().ListClients(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(after) != len(before) {
			t.Fatalf("refused registrations changed the clients: %d before, %d after", len(before), len(after))
		}
	})
}

func assertClient(t *testing.T, got *store.Client, want store.Client) {
	t.Helper()
	if got.ID != want.ID || got.Name != want.Name || got.Public != want.Public || got.SkipConsent != want.SkipConsent ||
		got.RequirePKCE != want.RequirePKCE || got.Require2FA != want.Require2FA || got.IDTokenAlg != cmp.Or(want.IDTokenAlg, store.AlgRS256) ||
		!slices.Equal(got.RedirectURIs, want.RedirectURIs) || !slices.Equal(got.PostLogoutRedirectURIs, want.PostLogoutRedirectURIs) ||
		!slices.Equal(got.GrantTypes, want.GrantTypes) || !slices.Equal(got.Scopes, want.Scopes) {
		t.Fatalf("stored client =\n%+v\nwant\n%+v", *got, want)
	}
}

func TestCLIKeysRotate(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		c := newCLI(t, b)
		ctx := context.Background()

		algs := []string{store.AlgRS256, store.AlgES256}
		rotate := func() (kids, previous map[string]string) {
			t.Helper()
			start := time.Now()
			out := c.ok("", "keys", "rotate")
			kids, previous = map[string]string{}, map[string]string{}
			for _, alg := range algs {
				kids[alg], _ = out["kids"].(map[string]any)[alg].(string)
				previous[alg], _ = out["previous_kids"].(map[string]any)[alg].(string)
				if kids[alg] == "" || previous[alg] == "" || kids[alg] == previous[alg] {
					t.Fatalf("keys rotate printed %v, want a new %s kid and the previous one", out, alg)
				}
			}
			until, err := time.Parse(time.RFC3339, out["previous_published_until"].(string))
			if err != nil {
				t.Fatalf("previous_published_until: %v", err)
			}
			if lo, hi := start.Add(time.Hour-time.Second), time.Now().Add(time.Hour+time.Second); until.Before(lo) || until.After(hi) {
				t.Errorf("previous_published_until = %s, want about an hour (the ID token lifespan) from now", until)
			}
			return kids, previous
		}

		// On a fresh database the first keys are made at start, then rotated.
		first, firstPrev := rotate()
		second, secondPrev := rotate()
		keys, err := c.store().ListSigningKeys(ctx, time.Now().Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		for _, alg := range algs {
			if secondPrev[alg] != first[alg] {
				t.Fatalf("second rotation's previous %s kid = %s, want the first rotation's %s", alg, secondPrev[alg], first[alg])
			}
			var kids, active []string
			for _, k := range keys {
				if k.Alg != alg {
					continue
				}
				kids = append(kids, k.KID)
				if k.RetiredAt.IsZero() {
					active = append(active, k.KID)
				}
			}
			slices.Sort(kids)
			want := []string{firstPrev[alg], first[alg], second[alg]}
			slices.Sort(want)
			if !slices.Equal(kids, want) {
				t.Fatalf("published %s keys = %v, want %v", alg, kids, want)
			}
			if !slices.Equal(active, []string{second[alg]}) {
				t.Fatalf("active %s keys = %v, want only the newest %s", alg, active, second[alg])
			}
			if got, err := c.store().ActiveSigningKeyID(ctx, alg); err != nil || got != second[alg] {
				t.Fatalf("ActiveSigningKeyID(%s) = %q, %v; want %s", alg, got, err, second[alg])
			}
		}
	})
}

func TestCLIMigrate(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		c := newCLI(t, b)
		for i, wantLog := range []bool{true, false} {
			out, errOut, err := c.run("", "migrate")
			if err != nil {
				t.Fatalf("migrate #%d: %v\n%s", i+1, err, errOut)
			}
			var v map[string]string
			if err := json.Unmarshal([]byte(out), &v); err != nil || v["status"] != "migrated" || v["dialect"] != b.Name {
				t.Fatalf("migrate #%d printed %q (%v)", i+1, out, err)
			}
			if got := strings.Contains(errOut, "database migrated"); got != wantLog {
				t.Fatalf("migrate #%d logged migrations: %v, want %v:\n%s", i+1, got, wantLog, errOut)
			}
		}
	})
}

// TestCLIConfigFile: every command takes --config; the file is read, and
// the environment still overrides it.
func TestCLIConfigFile(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "from-file.db")
	path := writeConfigFile(t, "database_url: sqlite:"+dbPath+"\nsecret_key: "+
		base64.StdEncoding.EncodeToString(randomKey(32))+"\nlog_format: json\n")
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"migrate", "--config", path}, strings.NewReader(""), &out, &errOut, envMap(nil))
	if err != nil {
		t.Fatalf("migrate --config: %v\n%s", err, errOut.String())
	}
	if _, err := os.Stat(dbPath); err != nil {
		t.Fatalf("the file's database_url was not used: %v", err)
	}
	if !strings.HasPrefix(errOut.String(), "{") {
		t.Fatalf("the file's log_format json was not used; stderr:\n%s", errOut.String())
	}

	err = run(context.Background(), []string{"migrate", "--config", path}, strings.NewReader(""), &out, &errOut,
		envMap(map[string]string{"TWOFOLD_LOG_FORMAT": "yaml"}))
	assertErrorMentions(t, err, `log_format: "yaml"`)
}

func TestCLIUsage(t *testing.T) {
	c := newCLI(t, storetest.SQLite())
	out, _, err := c.run("", "version")
	if err != nil || out != "twofold "+version+"\n" {
		t.Fatalf("version printed %q, %v", out, err)
	}
	out, _, err = c.run("", "help")
	if err != nil || !strings.Contains(out, "twofold clients create --name N --redirect-uri U") {
		t.Fatalf("help printed %q, %v", out, err)
	}

	tests := []struct {
		name       string
		args       []string
		wantStderr string
	}{
		{"no command", nil, ""},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown subcommand", []string{"users", "delete", "--email", "a@example.com"}, `unknown command "users delete"`},
		{"group without subcommand", []string{"keys"}, `unknown command "keys"`},
		{"extra argument to migrate", []string{"migrate", "now"}, `unexpected argument "now"`},
		{"extra argument to keys rotate", []string{"keys", "rotate", "all"}, `unexpected argument "all"`},
		{"extra argument to serve", []string{"serve", "--dev", "8080"}, `unexpected argument "8080"`},
		{"unknown flag", []string{"migrate", "--force"}, "flag provided but not defined: -force"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, err := c.run("", tt.args...)
			assertUsage(t, err)
			if out != "" || !strings.Contains(errOut, tt.wantStderr) {
				t.Fatalf("stdout %q, stderr %q; want nothing on stdout and %q on stderr", out, errOut, tt.wantStderr)
			}
		})
	}
	if _, err := os.Stat(strings.TrimPrefix(c.url, "sqlite:")); err == nil {
		t.Fatal("a usage error still opened (and created) the database")
	}
}

// TestCLIBadConfiguration: a command with a bad configuration fails before
// touching the database and names every problem.
func TestCLIBadConfiguration(t *testing.T) {
	c := newCLI(t, storetest.SQLite())
	c.vars["TWOFOLD_ISSUER"] = "ftp://x"
	c.vars["TWOFOLD_LOG_FORMAT"] = "xml"
	for _, args := range [][]string{{"migrate"}, {"keys", "rotate"}, {"serve"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			err := c.fails("", args...)
			if errors.Is(err, errUsage) {
				t.Fatalf("bad configuration is reported as a usage error: %v", err)
			}
			assertErrorMentions(t, err, "invalid configuration", `issuer: "ftp://x"`, `log_format: "xml"`)
		})
	}

	c = newCLI(t, storetest.SQLite())
	delete(c.vars, "TWOFOLD_SECRET_KEY")
	assertErrorMentions(t, c.fails("", "migrate"), "secret_key or secret_key_file is required")
	if _, err := os.Stat(strings.TrimPrefix(c.url, "sqlite:")); err == nil {
		t.Fatal("an invalid configuration still created the database")
	}
}
