package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/twofold-id/twofold/demo"

	"github.com/twofold-id/twofold/password"
	"github.com/twofold-id/twofold/provider"
	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/templates"
	"github.com/twofold-id/twofold/web"
)

// demoAccount is a seeded user and the password set for this run.
type demoAccount struct {
	Email, Name, Password string
	Role                  store.Role
}

// demoData is what development mode seeded, printed at start.
type demoData struct {
	Accounts     []demoAccount
	ClientID     string
	ClientSecret string
	OrgName      string
}

const (
	demoOrg      = "Demo Organization"
	demoClientID = "demo"
)

// seedDemo creates (once) a demo organization with an owner and a member,
// and a demo client for the /demo relying party. The passwords and client
// secret are fresh on every start and printed: nothing secret is fixed in
// the source.
func seedDemo(ctx context.Context, a *app, hasher *password.Hasher) (*demoData, error) {
	issuer := a.cfg.Issuer
	d := &demoData{OrgName: demoOrg, ClientID: demoClientID, ClientSecret: newClientSecret(), Accounts: []demoAccount{
		{Email: "owner@example.com", Name: "Olivia Owner", Role: store.RoleOwner, Password: demoPassword()},
		{Email: "member@example.com", Name: "Max Member", Role: store.RoleMember, Password: demoPassword()},
	}}
	now := time.Now()
	err := a.db.InTx(ctx, func(ctx context.Context) error {
		org, err := a.db.GetOrganizationByName(ctx, demoOrg)
		if errors.Is(err, store.ErrNotFound) {
			org = store.Organization{ID: uuid.NewString(), Name: demoOrg, CreatedAt: now}
			err = a.db.CreateOrganization(ctx, org)
		}
		if err != nil {
			return err
		}
		for _, acct := range d.Accounts {
			if err := seedAccount(ctx, a, hasher, org, acct, now); err != nil {
				return err
			}
		}
		// The demo client follows the issuer of this run, with a fresh secret.
		client := store.Client{ID: demoClientID, SecretHash: provider.HashClientSecret(a.sealer, d.ClientSecret),
			Name: "Demo application", RedirectURIs: []string{issuer + "/demo/callback"}, PostLogoutRedirectURIs: []string{issuer + "/demo"},
			GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid", "email", "profile", "offline_access"},
			RequirePKCE: true, CreatedAt: now}
		if _, err := a.db.GetOAuthClient(ctx, demoClientID); errors.Is(err, store.ErrNotFound) {
			return a.db.CreateClient(ctx, client)
		} else if err != nil {
			return err
		}
		return a.db.UpdateClient(ctx, client)
	})
	if err != nil {
		return nil, fmt.Errorf("seed demo data: %w", err)
	}
	return d, nil
}

func seedAccount(ctx context.Context, a *app, hasher *password.Hasher, org store.Organization, acct demoAccount, now time.Time) error {
	hash, err := hasher.Hash(ctx, acct.Password)
	if err != nil {
		return err
	}
	u, err := a.db.GetUserByEmail(ctx, acct.Email)
	if errors.Is(err, store.ErrNotFound) {
		u = store.User{ID: uuid.NewString(), Email: acct.Email, EmailVerified: true, Name: acct.Name, PasswordHash: hash, CreatedAt: now}
		if err := a.db.CreateUser(ctx, u); err != nil {
			return err
		}
	} else if err != nil {
		return err
	} else if err := a.db.SetUserPassword(ctx, u.ID, hash); err != nil {
		return err
	}
	return a.db.PutMembership(ctx, store.Membership{OrgID: org.ID, UserID: u.ID, Role: acct.Role, CreatedAt: now})
}

// demoPassword is 60 random bits in readable groups, like "K7QH-2VXM-PL4D".
func demoPassword() string {
	t := rand.Text()
	return t[0:4] + "-" + t[4:8] + "-" + t[8:12]
}

// startDev prints how to use the development server.
func startDev(e env, a *app, d *demoData) {
	w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	issuer := a.cfg.Issuer
	fmt.Fprintf(w, "\n  twofold is running in development mode (%s, %s)\n\n", a.db.Dialect(), a.cfg.databaseURL())
	fmt.Fprintf(w, "  Try it:\t%s/demo\n", issuer)
	for _, acct := range d.Accounts {
		fmt.Fprintf(w, "  %s:\t%s  password %s\n", titleRole(acct.Role), acct.Email, acct.Password)
	}
	fmt.Fprintf(w, "  Organization:\t%s\n", d.OrgName)
	fmt.Fprintf(w, "  Demo client:\tclient_id %s  client_secret %s\n", d.ClientID, d.ClientSecret)
	fmt.Fprintf(w, "  Discovery:\t%s/.well-known/openid-configuration\n", issuer)
	fmt.Fprintf(w, "  Mail outbox:\t%s/dev/mail\n\n", issuer)
	fmt.Fprintf(w, "  Passwords and the client secret change on every start.\n\n")
	w.Flush()
}

func titleRole(r store.Role) string { return strings.ToUpper(string(r[:1])) + string(r[1:]) }

// mountDev seeds the demo data and mounts the development-only pages: the
// demo relying party at /demo and the mail outbox at /dev/mail.
func mountDev(ctx context.Context, r *mux.Router, a *app, hasher *password.Hasher, tmpl *templates.Set, cookies web.Cookies) (*demoData, error) {
	d, err := seedDemo(ctx, a, hasher)
	if err != nil {
		return nil, err
	}
	rp := &demo.Handler{Issuer: a.cfg.Issuer, ClientID: d.ClientID, ClientSecret: d.ClientSecret, Templates: tmpl,
		Cookies: cookies, HTTPClient: &http.Client{Timeout: 10 * time.Second}}
	rp.Mount(r)
	return d, nil
}
