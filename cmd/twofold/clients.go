package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twofold-id/twofold/provider"
	"github.com/twofold-id/twofold/store"
)

func cmdClientsCreate(ctx context.Context, e env, args []string) error {
	f := newFlags("clients create", e)
	var redirects, postLogout stringList
	name := f.String("name", "", "client name shown to users (required)")
	id := f.String("id", "", "client id (default: generated)")
	f.Var(&redirects, "redirect-uri", "allowed redirect URI, exact match (repeatable; required for authorization_code)")
	f.Var(&postLogout, "post-logout-redirect-uri", "allowed post-logout redirect URI (repeatable)")
	public := f.Bool("public", false, "public client (native or browser app): no secret, PKCE required")
	skipConsent := f.Bool("skip-consent", false, "first-party client: users are never asked for consent")
	scopes := f.String("scopes", "openid email profile offline_access", "scopes the client may request, space-separated")
	grants := f.String("grant-types", "authorization_code,refresh_token", "comma-separated grant types")
	require2FA := f.Bool("require-2fa", false, "users must sign in with a second factor")
	noPKCE := f.Bool("no-pkce", false, "legacy confidential client that cannot send PKCE (not allowed with --public)")
	idTokenAlg := f.String("id-token-alg", store.AlgRS256, "how its ID tokens are signed: RS256 (the OpenID Connect default) or ES256")
	var c store.Client
	check := func() error {
		c = store.Client{
			ID: *id, Name: strings.TrimSpace(*name), RedirectURIs: redirects, PostLogoutRedirectURIs: postLogout,
			GrantTypes: splitList(*grants, ","), Scopes: strings.Fields(*scopes), Public: *public,
			SkipConsent: *skipConsent, RequirePKCE: !*noPKCE, Require2FA: *require2FA, IDTokenAlg: *idTokenAlg,
			CreatedAt: time.Now(),
		}
		if err := checkClient(c, *noPKCE); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		return nil
	}
	return withApp(ctx, e, f, args, check, func(a *app) error {
		if c.ID == "" {
			c.ID = strings.ToLower(newClientSecret()[:20])
		}
		out := map[string]any{"client_id": c.ID, "name": c.Name, "public": c.Public}
		if !c.Public {
			secret := newClientSecret()
			c.SecretHash = provider.HashClientSecret(a.sealer, secret)
			out["client_secret"] = secret
		}
		if err := a.db.CreateClient(ctx, c); errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("a client with id %q already exists", c.ID)
		} else if err != nil {
			return err
		}
		return printJSON(e, out)
	})
}

// checkClient reports everything wrong with a client registration.
func checkClient(c store.Client, noPKCE bool) error {
	var p []error
	if c.Name == "" {
		p = append(p, errors.New("--name is required"))
	}
	if err := checkGrantTypes(c.GrantTypes); err != nil {
		p = append(p, err)
	}
	if slices.Contains(c.GrantTypes, "authorization_code") && len(c.RedirectURIs) == 0 {
		p = append(p, errors.New("--redirect-uri is required for authorization_code"))
	}
	if c.Public && slices.Contains(c.GrantTypes, "client_credentials") {
		p = append(p, errors.New("a public client cannot use client_credentials"))
	}
	if c.Public && noPKCE {
		p = append(p, errors.New("--no-pkce is not allowed for public clients"))
	}
	if !slices.Contains(provider.SigningAlgs, c.IDTokenAlg) {
		p = append(p, fmt.Errorf("--id-token-alg %q: want RS256 or ES256", c.IDTokenAlg))
	}
	for _, u := range append(slices.Clone(c.RedirectURIs), c.PostLogoutRedirectURIs...) {
		if err := validRedirectURI(u); err != nil {
			p = append(p, err)
		}
	}
	return errors.Join(p...)
}

func splitList(s, sep string) []string {
	var out []string
	for _, v := range strings.Split(s, sep) {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
